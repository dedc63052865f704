"""Signed artifacts: layout, round trip, and refusal (before any unpickling) of changed bytes or another key."""

from __future__ import annotations

import hashlib
import hmac
import pickle

import numpy as np
import polars as pl
import pytest

from vigil import ml

KEY = b"server-secret"
UNPICKLED: list[str] = []


def _record(note: str) -> str:
    UNPICKLED.append(note)
    return note


class Booby:
    """Unpickling this runs `_record`: the stand-in for an attacker's code."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return _record, ("unpickled!",)


@pytest.fixture(scope="module")
def model() -> ml.FittedDetector:
    frame = pl.DataFrame({"x": [0.0, 1.0, 2.0, 1.5, 0.5, 30.0], "y": [1.0, 2.0, 1.0, 2.0, 1.0, -20.0]})
    return ml.fit_detector(
        frame,
        algorithm="copod",
        parameters={},
        contamination=0.2,
        features=["x", "y"],
        preprocessing=ml.Preprocessing(),
    )


def test_layout_magic_version_hmac_payload(model: ml.FittedDetector) -> None:
    data = ml.dump_artifact(model, key=KEY)
    assert data[:8] == ml.MAGIC == b"VIGILMDL"
    assert data[8] == ml.FORMAT_VERSION
    payload = data[41:]
    assert data[9:41] == hmac.new(KEY, payload, hashlib.sha256).digest()
    loaded = ml.load_artifact(data, key=KEY)
    frame = pl.DataFrame({"x": [0.3, 40.0], "y": [1.5, 9.0]})
    np.testing.assert_array_equal(loaded.score(frame), model.score(frame))


@pytest.mark.parametrize("position", [0, 7, 8, 9, 40, 41, -10, -1])
def test_any_changed_byte_is_refused(model: ml.FittedDetector, position: int) -> None:
    data = bytearray(ml.dump_artifact(model, key=KEY))
    data[position] ^= 0xFF
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(bytes(data), key=KEY)


@pytest.mark.parametrize("data", [b"", b"VIGILMDL", b"VIGILMDL\x01" + bytes(32), b"PK\x03\x04 a zip file"])
def test_truncated_or_foreign_data_is_refused(data: bytes) -> None:
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(data, key=KEY)


def test_another_key_is_refused(model: ml.FittedDetector) -> None:
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(ml.dump_artifact(model, key=KEY), key=b"another-secret")
    with pytest.raises(ml.MLError):
        ml.dump_artifact(model, key=b"")


def test_unverified_bytes_are_never_unpickled() -> None:
    payload = pickle.dumps(Booby())
    forged = ml.MAGIC + bytes([ml.FORMAT_VERSION]) + hmac.new(b"attacker", payload, hashlib.sha256).digest() + payload
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(forged, key=KEY)
    assert UNPICKLED == []


def test_a_signed_payload_that_is_not_a_model_is_refused() -> None:
    payload = pickle.dumps({"not": "a model"})
    signed = ml.MAGIC + bytes([ml.FORMAT_VERSION]) + hmac.new(KEY, payload, hashlib.sha256).digest() + payload
    with pytest.raises(ml.ArtifactIncompatible):
        ml.load_artifact(signed, key=KEY)

"""Signed artifacts: layout, round trip, and refusal (before any unpickling) of changed bytes or another key; a
genuine artifact this installation cannot load is incompatible (naming the versions), never tampered."""

from __future__ import annotations

import hashlib
import hmac
import json
import pickle
import sys
import types
from collections.abc import Mapping

import numpy as np
import polars as pl
import pytest

from vigil import ml
from vigil.ml import provenance

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


# Byte 8, the format version, is outside the HMAC: a newer format there is an incompatibility (see
# test_the_format_byte_names_a_newer_writer_or_is_tampered); every other byte is covered.
@pytest.mark.parametrize("position", [0, 7, 9, 40, 41, -10, -1])
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
    with pytest.raises(ml.ArtifactIncompatible) as caught:
        ml.load_artifact(signed, key=KEY)
    assert not isinstance(caught.value, ml.ArtifactTampered)


def retired_pickle() -> bytes:
    """A pickle of an object whose class lives in a module this installation no longer has: what a library's class
    moved or renamed between versions looks like to the reader."""
    module = types.ModuleType("vigil_retired_library")

    class Estimator:
        pass

    Estimator.__module__, Estimator.__qualname__ = module.__name__, "Estimator"
    module.Estimator = Estimator  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        return pickle.dumps(Estimator(), protocol=pickle.HIGHEST_PROTOCOL)
    finally:
        del sys.modules[module.__name__]


class Retired:
    """Pickles as `retired_pickle()`: stands in for a model whose library class this installation no longer has."""

    def __reduce__(self) -> tuple[object, tuple[bytes]]:
        return pickle.loads, (retired_pickle(),)


def signed_artifact(pickled: bytes, *, key: bytes, written_by: Mapping[str, str] | None) -> bytes:
    """An artifact laid out by hand: magic, format, HMAC, then the pickle and (unless None) the versions' trailer."""
    payload = pickled
    if written_by is not None:
        body = json.dumps(dict(written_by)).encode()
        payload += provenance.TRAILER_MAGIC + body + len(body).to_bytes(4, "big")
    return ml.MAGIC + bytes([ml.FORMAT_VERSION]) + hmac.new(key, payload, hashlib.sha256).digest() + payload


def test_an_artifact_names_the_versions_that_wrote_it_and_older_readers_still_load_it(model: ml.FittedDetector) -> None:
    payload = ml.dump_artifact(model, key=KEY)[41:]
    assert isinstance(pickle.loads(payload), ml.FittedDetector)  # what a reader from before the trailer does
    pickled, written_by = provenance.split_trailer(payload)
    assert written_by == provenance.library_versions()
    assert {"scikit-learn", "pyod", "river", "numpy", "python", "vigil"} <= written_by.keys()
    assert signed_artifact(bytes(pickled), key=KEY, written_by=written_by) == ml.dump_artifact(model, key=KEY)


def test_a_genuine_artifact_of_other_library_versions_is_incompatible_not_tampered() -> None:
    ours = provenance.library_versions()
    written = {**ours, "scikit-learn": "0.24.2", "pyod": "1.0.0"}
    with pytest.raises(ml.ArtifactIncompatible) as caught:
        ml.load_artifact(signed_artifact(retired_pickle(), key=KEY, written_by=written), key=KEY)
    error = caught.value
    assert not isinstance(error, ml.ArtifactTampered)
    assert error.written_by == {"pyod": "1.0.0", "scikit-learn": "0.24.2"}
    assert error.read_by == {"pyod": ours["pyod"], "scikit-learn": ours["scikit-learn"]}
    assert "scikit-learn 0.24.2" in str(error)
    assert f"scikit-learn {ours['scikit-learn']}" in str(error)
    assert "vigil_retired_library" in str(error)  # the library's own reason


def test_an_artifact_from_before_the_record_loads_or_is_incompatible_naming_the_readers(
    model: ml.FittedDetector,
) -> None:
    old = signed_artifact(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL), key=KEY, written_by=None)
    frame = pl.DataFrame({"x": [0.3, 40.0], "y": [1.5, 9.0]})
    np.testing.assert_array_equal(ml.load_artifact(old, key=KEY).score(frame), model.score(frame))
    with pytest.raises(ml.ArtifactIncompatible) as caught:
        ml.load_artifact(signed_artifact(retired_pickle(), key=KEY, written_by=None), key=KEY)
    assert caught.value.written_by is None
    assert caught.value.read_by == provenance.library_versions()
    assert "not recorded" in str(caught.value)


def test_the_format_byte_names_a_newer_writer_or_is_tampered(model: ml.FittedDetector) -> None:
    data = bytearray(ml.dump_artifact(model, key=KEY))
    for newer in (2, 0xFE):
        data[8] = newer
        with pytest.raises(ml.ArtifactIncompatible) as caught:
            ml.load_artifact(bytes(data), key=KEY)
        assert (caught.value.written_by, caught.value.read_by) == (
            {"artifact format": str(newer)},
            {"artifact format": str(ml.FORMAT_VERSION)},
        )
    data[8] = 0  # no format 0 was ever written
    with pytest.raises(ml.ArtifactTampered):
        ml.load_artifact(bytes(data), key=KEY)


def test_a_memory_error_while_loading_is_itself(model: ml.FittedDetector, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(data: bytes) -> object:
        raise MemoryError

    monkeypatch.setattr(provenance, "pickle", types.SimpleNamespace(loads=no_memory))
    with pytest.raises(MemoryError):
        ml.load_artifact(ml.dump_artifact(model, key=KEY), key=KEY)

"""Signed exports: only a trusted signer's untouched envelope is ever unpickled."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tests.ml.test_artifacts import Retired
from vigil import ml
from vigil.ml import exchange, provenance

SEED_A, SEED_B = ml.signing_seed(b"installation A"), ml.signing_seed(b"installation B")


@pytest.fixture(scope="module")
def model() -> ml.FittedDetector:
    frame = pl.DataFrame({"x": [0.0, 0.5, 1.0, 1.5, 40.0] * 4})
    return ml.fit_detector(
        frame, algorithm="hbos", parameters={}, contamination=0.2, features=["x"], preprocessing=ml.Preprocessing()
    )


def test_round_trip_keeps_scores_and_manifest(model: ml.FittedDetector) -> None:
    data = ml.seal_export(model, manifest={"version": 3}, seed=SEED_A)
    loaded, manifest, signer = ml.open_export(data, trusted=[ml.public_key(SEED_B), ml.public_key(SEED_A)])
    frame = pl.DataFrame({"x": [0.2, 50.0]})
    np.testing.assert_array_equal(loaded.score(frame), model.score(frame))
    assert manifest["version"] == 3
    assert signer == ml.public_key(SEED_A)


@pytest.mark.parametrize("position", [9, 50, 120, -5])
def test_any_changed_byte_is_refused(model: ml.FittedDetector, position: int) -> None:
    data = bytearray(ml.seal_export(model, manifest={}, seed=SEED_A))
    data[position] ^= 0x01
    with pytest.raises(ml.ArtifactTampered):
        ml.open_export(bytes(data), trusted=[ml.public_key(SEED_A)])


def test_a_malicious_payload_from_an_untrusted_signer_is_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (Path.touch, (str(marker),))  # type: ignore[return-value]

    payload = pickle.dumps(Exploit())
    body = b"{}"
    signed = len(body).to_bytes(4, "big") + body + payload
    forged = exchange.EXPORT_MAGIC + bytes([1]) + bytes(32) + bytes(64) + signed
    for trusted in ([ml.public_key(SEED_A)], []):
        with pytest.raises(ml.ArtifactTampered):
            ml.open_export(forged, trusted=trusted)
    with pytest.raises(ml.UntrustedSigner):
        ml.open_export(ml.seal_export(_any_model(), manifest={}, seed=SEED_B), trusted=[ml.public_key(SEED_A)])
    assert not marker.exists()


def _any_model() -> ml.FittedDetector:
    frame = pl.DataFrame({"x": [0.0, 1.0, 2.0, 9.0]})
    return ml.fit_detector(
        frame, algorithm="ecod", parameters={}, contamination=0.25, features=["x"], preprocessing=ml.Preprocessing()
    )


def test_not_an_export_is_refused() -> None:
    for data in (b"", b"VIGILEXP", b"VIGILMDL" + bytes(200)):
        with pytest.raises(ml.ArtifactTampered):
            ml.open_export(data, trusted=[ml.public_key(SEED_A)])


def test_a_genuine_export_of_other_library_versions_is_incompatible_not_tampered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ours = provenance.library_versions()
    monkeypatch.setattr(exchange, "library_versions", lambda: {**ours, "scikit-learn": "0.24.2"})
    data = ml.seal_export(Retired(), manifest={"version": 1}, seed=SEED_A)  # type: ignore[arg-type]
    monkeypatch.undo()
    with pytest.raises(ml.ArtifactIncompatible) as caught:
        ml.open_export(data, trusted=[ml.public_key(SEED_A)])
    assert not isinstance(caught.value, ml.ArtifactTampered)
    assert caught.value.written_by == {"scikit-learn": "0.24.2"}
    assert caught.value.read_by == {"scikit-learn": ours["scikit-learn"]}


def test_a_newer_export_format_is_incompatible(model: ml.FittedDetector) -> None:
    data = bytearray(ml.seal_export(model, manifest={}, seed=SEED_A))
    data[len(exchange.EXPORT_MAGIC)] = 2
    with pytest.raises(ml.ArtifactIncompatible) as caught:
        ml.open_export(bytes(data), trusted=[ml.public_key(SEED_A)])
    assert (caught.value.written_by, caught.value.read_by) == ({"export format": "2"}, {"export format": "1"})

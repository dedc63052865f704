"""Signed model artifacts: a fitted detector as bytes that are verified before anything is unpickled.

Layout: ``b"VIGILMDL"`` (magic), one format-version byte, the HMAC-SHA256 of the payload under the server's
secret key (32 bytes), then the payload: a pickle of the `FittedDetector`, and the versions that wrote it
(`provenance.py`'s trailer, which older readers skip). Unpickling runs code chosen by whoever wrote the bytes, so
nothing is unpickled unless the HMAC proves the server itself wrote them.

A refusal says which it is: `ArtifactTampered` (not an artifact, another key, a changed byte — never loaded) or
`ArtifactIncompatible` (genuine, but written by library versions whose pickle does not load here, or in a newer
format than this code reads; retraining fixes it).
"""

from __future__ import annotations

import hashlib
import hmac
import pickle
from collections.abc import Sequence

from vigil.ml.detector import FittedDetector
from vigil.ml.errors import ArtifactIncompatible, ArtifactTampered, MLError
from vigil.ml.provenance import split_trailer, unpickle_verified, with_trailer

__all__ = ["FORMAT_VERSION", "MAGIC", "dump_artifact", "load_artifact"]

MAGIC = b"VIGILMDL"
FORMAT_VERSION = 1
_DIGEST_SIZE = hashlib.sha256().digest_size
_HEADER_SIZE = len(MAGIC) + 1 + _DIGEST_SIZE


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes | bytearray) or not key:
        raise MLError("The artifact key must be non-empty bytes.")


def _sign(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def dump_artifact(model: FittedDetector, *, key: bytes) -> bytes:
    """The model as signed bytes, for `load_artifact` with the same key.

    Examples
    --------
    >>> import polars as pl
    >>> from vigil.ml import Preprocessing, fit_detector
    >>> frame = pl.DataFrame({"x": [0.0, 1.0, 2.0, 3.0, 50.0]})
    >>> model = fit_detector(frame, algorithm="hbos", parameters={}, contamination=0.2, features=["x"],
    ...                      preprocessing=Preprocessing())
    >>> data = dump_artifact(model, key=b"secret")
    >>> data[:8], data[8]
    (b'VIGILMDL', 1)
    >>> (load_artifact(data, key=b"secret").score(frame) == model.score(frame)).all()
    np.True_
    """
    _check_key(key)
    payload = with_trailer(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    return MAGIC + bytes([FORMAT_VERSION]) + _sign(payload, key) + payload


def load_artifact(data: bytes, *, key: bytes, also: Sequence[bytes] = ()) -> FittedDetector:
    """The model in `data`, after checking magic, format version and HMAC (in constant time).

    Raises `ArtifactTampered` if any check fails (a changed byte, another key, not an artifact): the bytes are
    then never unpickled. Raises `ArtifactIncompatible` for an artifact in a newer format than this code reads,
    or a genuine one these library versions cannot load (naming the versions that wrote it and those that read).

    Examples
    --------
    >>> load_artifact(b"VIGILMDL\x01" + bytes(40), key=b"secret")
    Traceback (most recent call last):
    ...
    vigil.ml.errors.ArtifactTampered: The model artifact failed its integrity check (signature mismatch).
    """
    _check_key(key)
    data = bytes(data)
    if len(data) <= _HEADER_SIZE or not data.startswith(MAGIC):
        raise ArtifactTampered("The data is not a Vigil model artifact.")
    version = data[len(MAGIC)]
    if version > FORMAT_VERSION:
        # Written by a newer Vigil (a deployment rolled back). The format byte is outside the HMAC, so a changed
        # byte could claim this too; either way nothing is unpickled, and retraining makes a model this code reads.
        raise ArtifactIncompatible(
            "The model artifact",
            written_by={"artifact format": str(version)},
            read_by={"artifact format": str(FORMAT_VERSION)},
        )
    if version != FORMAT_VERSION:
        raise ArtifactTampered(f"Unsupported model artifact format version {version}.")
    signature, payload = data[len(MAGIC) + 1 : _HEADER_SIZE], data[_HEADER_SIZE:]
    # `also`: keys that signed earlier artifacts (before the key was derived), still accepted for reading.
    if not any(hmac.compare_digest(signature, _sign(payload, k)) for k in (key, *also)):
        raise ArtifactTampered("The model artifact failed its integrity check (signature mismatch).")
    pickled, written_by = split_trailer(payload)
    # Safe only because the HMAC above proved these bytes were written by dump_artifact under our key.
    return unpickle_verified(pickled, what="The model artifact", kind=FittedDetector, written_by=written_by)

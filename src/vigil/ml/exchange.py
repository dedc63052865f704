"""Signed model exports: a fitted detector in an envelope another tenant or installation can verify before loading.

Stored artifacts (`artifacts.py`) are signed with an HMAC under the server's secret, which no other installation
has. An export is signed instead with an **Ed25519** key derived from that secret, so anyone can verify it with the
public key while only the exporting server can make one. Importing checks, before anything is unpickled, that the
envelope is well formed, that its signer is one the importer trusts, and that the signature holds over the
manifest and the payload together; only then is the payload unpickled.

Layout: ``b"VIGILEXP"``, one format byte, the signer's 32-byte public key, the 64-byte signature, the manifest's
length (4 bytes, big-endian), the manifest (UTF-8 JSON: metadata, the payload's SHA-256 and `written_by`, the
exporter's library versions), then the payload (a pickle of the `FittedDetector`). The signature covers everything
after itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import pickle
from collections.abc import Iterable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from vigil.ml.detector import FittedDetector
from vigil.ml.errors import ArtifactIncompatible, ArtifactTampered, UntrustedSigner
from vigil.ml.provenance import library_versions, unpickle_verified

__all__ = ["EXPORT_MAGIC", "key_id", "open_export", "public_key", "seal_export", "signing_seed"]

EXPORT_MAGIC = b"VIGILEXP"
_FORMAT = 1
_KEY, _SIG, _LEN = 32, 64, 4
_HEADER = len(EXPORT_MAGIC) + 1 + _KEY + _SIG + _LEN
_MAX_MANIFEST = 1 << 20


def signing_seed(secret: bytes) -> bytes:
    """The Ed25519 private seed this installation signs exports with, derived from its secret key (so it needs no
    storage of its own, and rotating the secret rotates it)."""
    return hmac.new(secret, b"vigil/model-export/ed25519/v1", hashlib.sha256).digest()


def public_key(seed: bytes) -> str:
    """The public key of `seed`, URL-safe base64 (what an importing tenant adds to its trusted keys).

    Examples
    --------
    >>> len(public_key(signing_seed(b"secret")))
    43
    """
    raw = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_id(public: str) -> str:
    """A short fingerprint of a public key, to name it in lists and errors.

    Examples
    --------
    >>> len(key_id(public_key(signing_seed(b"secret"))))
    16
    """
    return hashlib.sha256(_decode_key(public)).hexdigest()[:16]


def _decode_key(public: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(public + "=" * (-len(public) % 4))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a URL-safe base64 public key") from exc
    if len(raw) != _KEY:
        raise ValueError("an Ed25519 public key is 32 bytes")
    return raw


def seal_export(model: FittedDetector, *, manifest: dict[str, Any], seed: bytes) -> bytes:
    """`model` and its `manifest` (JSON-ready metadata) as a signed envelope for `open_export`.

    Examples
    --------
    >>> import polars as pl
    >>> from vigil.ml import Preprocessing, fit_detector
    >>> model = fit_detector(pl.DataFrame({"x": [0.0, 1.0, 2.0, 50.0]}), algorithm="hbos", parameters={},
    ...                      contamination=0.25, features=["x"], preprocessing=Preprocessing())
    >>> seed = signing_seed(b"installation A")
    >>> data = seal_export(model, manifest={"name": "demo"}, seed=seed)
    >>> loaded, manifest, signer = open_export(data, trusted=[public_key(seed)])
    >>> manifest["name"], signer == public_key(seed)
    ('demo', True)
    >>> open_export(data, trusted=[public_key(signing_seed(b"installation B"))])
    Traceback (most recent call last):
    ...
    vigil.ml.errors.UntrustedSigner: The export is signed by a key this tenant does not trust.
    """
    payload = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    sealed = {**manifest, "payload_sha256": hashlib.sha256(payload).hexdigest(), "written_by": library_versions()}
    body = json.dumps(sealed, sort_keys=True).encode()
    signed = len(body).to_bytes(_LEN, "big") + body + payload
    private = Ed25519PrivateKey.from_private_bytes(seed)
    return EXPORT_MAGIC + bytes([_FORMAT]) + private.public_key().public_bytes_raw() + private.sign(signed) + signed


def open_export(data: bytes, *, trusted: Iterable[str]) -> tuple[FittedDetector, dict[str, Any], str]:
    """The model, manifest and signer's public key of an export, after every check; nothing is unpickled first.

    Raises `ArtifactTampered` (not an export, a changed byte, a bad signature), `UntrustedSigner` (a valid
    envelope from a key not in `trusted`) or `ArtifactIncompatible` (a newer format than this code reads, or
    genuine but written by library versions whose pickle does not load here).
    """
    data = bytes(data)
    if len(data) <= _HEADER or not data.startswith(EXPORT_MAGIC):
        raise ArtifactTampered("The data is not a Vigil model export.")
    version = data[len(EXPORT_MAGIC)]
    if version > _FORMAT:  # a newer Vigil's export; nothing is unpickled either way
        raise ArtifactIncompatible(
            "The model export", written_by={"export format": str(version)}, read_by={"export format": str(_FORMAT)}
        )
    if version != _FORMAT:
        raise ArtifactTampered(f"Unsupported model export format version {version}.")
    at = len(EXPORT_MAGIC) + 1
    signer, signature, signed = data[at : at + _KEY], data[at + _KEY : at + _KEY + _SIG], data[at + _KEY + _SIG :]
    trusted_raw = set()
    for key in trusted:
        try:
            trusted_raw.add(_decode_key(key))
        except ValueError:
            continue
    if signer not in trusted_raw:
        raise UntrustedSigner("The export is signed by a key this tenant does not trust.")
    try:
        Ed25519PublicKey.from_public_bytes(signer).verify(signature, signed)
    except InvalidSignature:
        raise ArtifactTampered("The model export failed its signature check (changed or forged).") from None
    length = int.from_bytes(signed[:_LEN], "big")
    if length > min(_MAX_MANIFEST, len(signed) - _LEN):
        raise ArtifactTampered("The model export's manifest is malformed.")
    body, payload = signed[_LEN : _LEN + length], signed[_LEN + length :]
    try:
        manifest = json.loads(body)
    except ValueError as exc:
        raise ArtifactTampered("The model export's manifest is malformed.") from exc
    if not isinstance(manifest, dict) or manifest.get("payload_sha256") != hashlib.sha256(payload).hexdigest():
        raise ArtifactTampered("The model export's manifest does not match its payload.")
    written = manifest.get("written_by")
    written_by = {str(k): str(v) for k, v in written.items()} if isinstance(written, dict) else None
    # Safe only because the signature above proved a trusted installation wrote these bytes.
    model = unpickle_verified(payload, what="The model export", kind=FittedDetector, written_by=written_by)
    return model, manifest, base64.urlsafe_b64encode(signer).rstrip(b"=").decode()

"""Which versions wrote a model artifact, so one this installation cannot load says what wrote it and what reads it.

A pickle holds the library classes of the model, so an artifact written under other library versions may not load
here although its signature holds: an incompatibility, which retraining fixes — never tampering. To name the
versions, every signed payload ends with a small trailer after the pickle: ``b"VIGILLIB"``, the writer's versions
(UTF-8 JSON) and that JSON's length (4 bytes, big-endian). The signature covers it like the rest of the payload,
and `pickle.loads` stops at the pickle's own end, so a reader that predates the trailer loads the model as before.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import pickle
import platform
from collections.abc import Mapping
from typing import TypeVar

from vigil.ml.errors import ArtifactIncompatible

T = TypeVar("T")

__all__ = ["TRAILER_MAGIC", "library_versions", "split_trailer", "unpickle_verified", "with_trailer"]

TRAILER_MAGIC = b"VIGILLIB"
_LEN = 4
# The distributions whose classes (or whose pickling) a model's pickle depends on.
_LIBRARIES = ("vigil", "scikit-learn", "pyod", "river", "numpy", "scipy")


def library_versions() -> dict[str, str]:
    """This installation's versions of Python and the libraries a model's pickle depends on (a copy).

    >>> sorted(library_versions())[:3]
    ['numpy', 'pyod', 'python']
    """
    return dict(_installed())


@functools.cache
def _installed() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


@functools.cache
def _trailer() -> bytes:
    body = json.dumps(library_versions(), sort_keys=True).encode()
    return TRAILER_MAGIC + body + len(body).to_bytes(_LEN, "big")


def with_trailer(pickled: bytes) -> bytes:
    """`pickled` followed by the trailer naming the versions that wrote it."""
    return pickled + _trailer()


def split_trailer(payload: bytes) -> tuple[memoryview, dict[str, str] | None]:
    """The pickle of a verified payload and the versions that wrote it (None when it has no trailer: written
    before they were recorded).

    >>> pickled, written = split_trailer(with_trailer(b"a pickle"))
    >>> bytes(pickled), written == library_versions()
    (b'a pickle', True)
    >>> split_trailer(b"an older pickle")[1] is None
    True
    """
    view = memoryview(payload)
    if len(payload) >= len(TRAILER_MAGIC) + _LEN:
        length = int.from_bytes(payload[-_LEN:], "big")
        start = len(payload) - _LEN - length - len(TRAILER_MAGIC)
        if start >= 0 and payload[start : start + len(TRAILER_MAGIC)] == TRAILER_MAGIC:
            try:
                written = json.loads(payload[start + len(TRAILER_MAGIC) : -_LEN])
            except ValueError:
                written = None
            if isinstance(written, dict) and all(isinstance(v, str) for v in written.values()):
                return view[:start], {str(k): v for k, v in written.items()}
    return view, None


def unpickle_verified(
    pickled: bytes | memoryview, *, what: str, kind: type[T], written_by: Mapping[str, str] | None
) -> T:
    """The object of a payload whose signature the caller has verified (unpickling runs the writer's code: never
    call this before), or `ArtifactIncompatible` naming the versions when it does not load here as a `kind`."""
    try:
        loaded = pickle.loads(pickled)  # noqa: S301 - the caller verified who wrote these bytes
    except MemoryError:
        raise  # the process's memory cap, not the artifact: the job machinery reports it as such
    except Exception as exc:
        raise ArtifactIncompatible(what, written_by=written_by, read_by=library_versions(), reason=str(exc)) from exc
    if not isinstance(loaded, kind):
        reason = f"it holds a {type(loaded).__name__}, not a {kind.__name__}"
        raise ArtifactIncompatible(what, written_by=written_by, read_by=library_versions(), reason=reason)
    return loaded

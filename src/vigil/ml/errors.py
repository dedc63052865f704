"""The engine's exceptions: one base class, and one subclass per problem a caller must tell apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ArtifactIncompatible",
    "ArtifactTampered",
    "InvalidFeatures",
    "InvalidParameters",
    "MLError",
    "TrainingFailed",
    "UnknownAlgorithm",
    "UntrustedSigner",
]


class MLError(Exception):
    """Base of every error the engine raises on purpose; callers catch this one class."""


class UnknownAlgorithm(MLError):
    """The algorithm name is not in the catalog."""

    def __init__(self, algorithm: str, known: list[str], *, hint: str | None = None) -> None:
        self.algorithm = algorithm
        reason = f" ({hint})" if hint else ""
        super().__init__(f"Unknown algorithm {algorithm!r}{reason}; choose one of: {', '.join(known)}.")


class InvalidParameters(MLError):
    """Parameters that do not fit the algorithm's schema; `errors` lists every problem, not just the first.

    Each error is ``{"loc": ["body", "parameters", name], "msg": ..., "type": ...}``, the shape of a
    Pydantic validation error, so the API can report them the same way.
    """

    def __init__(self, algorithm: str, errors: list[dict[str, Any]]) -> None:
        self.algorithm = algorithm
        self.errors = errors
        names = ", ".join(repr(e["loc"][-1]) for e in errors)
        super().__init__(f"{len(errors)} invalid parameter(s) for algorithm {algorithm!r}: {names}.")


class InvalidFeatures(MLError):
    """Feature data the model cannot use (missing column, wrong type, non-finite value, refused nulls).

    Each entry of `errors` is ``{"loc": ["features", column], "msg": ..., "type": ...}``.
    """

    def __init__(self, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message)


class TrainingFailed(MLError):
    """The detector library could not fit this data with these parameters (its own error is in the message)."""


class ArtifactTampered(MLError):
    """A model artifact failed its integrity check (wrong format, wrong key or changed bytes); it was not loaded."""


class ArtifactIncompatible(MLError):
    """A genuine artifact that this installation cannot load: its signature holds but its pickle does not load under
    these library versions, or it names a newer format than this code reads. Not tampering (so not an
    `ArtifactTampered`): nothing is wrong with the bytes, and retraining makes a model this installation can load.

    `written_by` and `read_by` name the versions that differ (``{"scikit-learn": "1.5.0"}``; for a format,
    ``{"artifact format": "2"}``); `written_by` is None for an artifact written before versions were recorded, and
    `read_by` then names all of this installation's.
    """

    def __init__(
        self,
        what: str,
        *,
        written_by: Mapping[str, str] | None,
        read_by: Mapping[str, str],
        reason: str = "",
    ) -> None:
        if written_by:
            differ = sorted(k for k in {*written_by, *read_by} if written_by.get(k) != read_by.get(k))
            self.written_by: dict[str, str] | None = {k: written_by.get(k, "none") for k in differ}
            self.read_by = {k: read_by.get(k, "none") for k in differ}
        else:
            self.written_by, self.read_by = None, dict(read_by)
        because = f" ({reason})" if reason else ""
        if self.written_by == {}:
            versions = "it was written with the versions this installation reads with"
        else:
            versions = (
                f"it was written with {_describe(self.written_by)}, and this installation reads with "
                + _describe(self.read_by)
            )
        super().__init__(f"{what} is genuine but cannot be loaded here{because}: {versions}.")


class UntrustedSigner(ArtifactTampered):
    """A well-formed model export signed by a key the importer does not trust; it was not loaded."""


def _describe(versions: Mapping[str, str] | None) -> str:
    """Versions as a reader would write them.

    >>> _describe({"scikit-learn": "1.5.0", "python": "3.12.1"})
    'python 3.12.1, scikit-learn 1.5.0'
    >>> _describe(None)
    'versions not recorded (an artifact older than the record)'
    """
    if not versions:
        return "versions not recorded (an artifact older than the record)"
    return ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))

"""The engine's exceptions: one base class, and one subclass per problem a caller must tell apart."""

from __future__ import annotations

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


class ArtifactIncompatible(ArtifactTampered):
    """A genuine artifact (its signature holds) that these library versions cannot load; retraining fixes it."""


class UntrustedSigner(ArtifactTampered):
    """A well-formed model export signed by a key the importer does not trust; it was not loaded."""

"""The `VigilError` hierarchy: what services raise, and what the one handler turns into RFC 9457 problems.

Each class carries what its problem document needs: the HTTP status, a `type` slug documented in
docs/problems.md (served at `/problems/{slug}`), a title, and any extra members.
"""

from __future__ import annotations

from typing import Any, ClassVar


def problem_type_uri(slug: str) -> str:
    """The `type` of a problem document (RFC 9457), also used for a failed job's error."""
    return f"/problems/{slug}"


class VigilError(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra
        self.headers: dict[str, str] = {}


class InvalidInput(VigilError):
    """The request is well-formed HTTP but its content is wrong; `errors` lists each wrong field."""

    status = 422
    slug = "invalid-input"
    title = "Invalid input"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any) -> None:
        super().__init__(detail, errors=errors or [], **extra)


class MalformedFile(InvalidInput):
    slug = "malformed-file"
    title = "The file could not be read"


class Unauthorized(VigilError):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"

    def __init__(self, detail: str = "Missing or invalid credentials.", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["WWW-Authenticate"] = "Bearer"


class Forbidden(VigilError):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


class NotFound(VigilError):
    """Also what another tenant's object looks like: existence never leaks across tenants."""

    status = 404
    slug = "not-found"
    title = "Not found"

    def __init__(self, resource: str, id: str) -> None:
        super().__init__(f"No {resource} with id {id!r}.", resource=resource, id=id)


class Conflict(VigilError):
    status = 409
    slug = "conflict"
    title = "Conflict with the current state"


class SecretNotReplayed(Conflict):
    """A retried request whose first answer carried a secret: the secret is shown once and never kept."""

    slug = "secret-not-replayed"
    title = "The first answer carried a secret that is not kept"

    def __init__(self, *, resource: str, resource_id: str) -> None:
        super().__init__(
            f"This Idempotency-Key already created {resource} {resource_id!r}; its secret was shown once, in that "
            f"answer, and is not kept. If it was lost, revoke {resource_id!r} and create another.",
            resource=resource,
            resource_id=resource_id,
        )


class AnswerLost(Conflict):
    """A retried request whose write was applied but whose answer was lost, on a route that cannot rebuild it."""

    slug = "answer-lost"
    title = "The request was applied; its answer was lost"

    def __init__(self) -> None:
        super().__init__(
            "The request with this Idempotency-Key was applied once, and its answer was lost (the server stopped "
            "before sending it). It is not applied again: read the resource to see its result."
        )


class ClaimTakenOver(Conflict):
    """The request's `Idempotency-Key` claim ran out and a retry took it over: this request's write is undone."""

    slug = "claim-taken-over"
    title = "A retry with this Idempotency-Key took the request over"

    def __init__(self) -> None:
        super().__init__(
            "This request ran past its Idempotency-Key lease and a retry with the same key took it over; this "
            "request's write was rolled back (the retry's answer is the one that counts)."
        )


class InvalidState(Conflict):
    slug = "invalid-state"
    title = "Not possible in the resource's current state"


class ArtifactIntegrity(Conflict):
    slug = "artifact-integrity"
    title = "A stored model artifact failed its integrity check"


class IncompatibleArtifact(Conflict):
    """A genuine model artifact (stored, imported, or a stream's state) that this installation cannot load: written
    by other library versions, or in a newer format. Not an integrity failure: retraining fixes it."""

    slug = "artifact-incompatible"
    title = "A model artifact was written by versions this installation cannot load"

    def __init__(self, detail: str, *, written_by: dict[str, str] | None, read_by: dict[str, str]) -> None:
        super().__init__(detail, written_by=written_by, read_by=read_by)


class PayloadTooLarge(VigilError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"The request body exceeds the limit of {limit_bytes} bytes.", limit_bytes=limit_bytes)


class UnsupportedMediaType(VigilError):
    status = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"

    def __init__(self, media_type: str | None, supported: list[str]) -> None:
        super().__init__(
            f"Content-Type {media_type or '(none)'!s} is not accepted here; send one of: {', '.join(supported)}.",
            supported=supported,
        )


class QuotaExceeded(VigilError):
    status = 403
    slug = "quota-exceeded"
    title = "Quota exceeded"

    def __init__(self, quota: str, limit: int, used: int) -> None:
        super().__init__(f"Quota {quota!r} reached: {used} used of {limit}.", quota=quota, limit=limit, used=used)


class RateLimited(VigilError):
    """Too many requests in the window of a rate limit; `Retry-After` says when the next one will be accepted."""

    status = 429
    slug = "rate-limited"
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: int, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail, retry_after_s=retry_after_s, **extra)
        self.headers.update(headers or {})
        self.headers["Retry-After"] = str(retry_after_s)


class LockedOut(RateLimited):
    """Logins are paused after repeated failures (for the account from this address, the account, or the address)."""

    slug = "locked-out"
    title = "Temporarily locked out after failed logins"


class ServiceUnavailable(VigilError):
    status = 503
    slug = "service-unavailable"
    title = "Service unavailable"

    def __init__(self, detail: str, retry_after_s: int = 5, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.headers["Retry-After"] = str(retry_after_s)


class JobTimeLimit(VigilError):
    """A job ran past its kind's time limit (soft: interrupted; hard: its process was killed)."""

    slug = "job-time-limit"
    title = "The job ran past its time limit"


class JobOutOfMemory(VigilError):
    """A job needed more memory than a worker process may take (`VIGIL_WORKER_MAX_MEMORY_MB`)."""

    slug = "job-out-of-memory"
    title = "The job ran out of memory"


class JobInterrupted(VigilError):
    """A job's worker was lost on every attempt (killed, crashed, or silent past its lease): it was given up."""

    slug = "job-interrupted"
    title = "The job was interrupted on every attempt"


PROBLEM_TYPES: dict[str, str] = {
    "internal": "An unexpected error; the request id in the body finds it in the server's logs.",
    "invalid-input": "The request's content is wrong; `errors` names each field and why.",
    "malformed-file": "An uploaded file could not be parsed in the format it claims.",
    "unauthorized": "No credentials, or credentials that are invalid, expired or revoked.",
    "forbidden": "The caller is authenticated but lacks the permission this route declares.",
    "not-found": "No such resource in the caller's tenant (another tenant's resources look the same).",
    "route-not-found": "No route matches the path.",
    "method-not-allowed": "The route exists but not with this method; `Allow` lists the ones it has.",
    "conflict": "The request conflicts with the current state, e.g. a duplicate name or a reused idempotency key.",
    "secret-not-replayed": "A retry with an Idempotency-Key whose first answer carried a secret (a new API key): "
    "`resource_id` names what was created; the secret itself was shown once and is not kept.",
    "answer-lost": "A retry with an Idempotency-Key whose first request was applied and whose answer was lost, on a "
    "route that cannot rebuild it: applied once, not again; read the resource to see its result.",
    "claim-taken-over": "The request ran past its Idempotency-Key lease and a retry took the key over: this "
    "request's write was rolled back; the retry's answer is the one that counts.",
    "invalid-state": "The resource is not in a state that allows this (e.g. detect before training).",
    "artifact-integrity": "A model artifact's signature does not match: it was refused, never loaded. Retrain.",
    "artifact-incompatible": "A genuine model artifact written by library (or format) versions this installation "
    "cannot load: `written_by` and `read_by` name the versions that differ. Not tampering; retraining fixes it.",
    "payload-too-large": "The body exceeds the size limit named in `limit_bytes`.",
    "unsupported-media-type": "The Content-Type is not one this route accepts; `supported` lists those.",
    "quota-exceeded": "A tenant quota is reached; `quota`, `limit` and `used` say which.",
    "malformed-body": "The body could not be parsed: not JSON, not UTF-8, or nested too deeply.",
    "rate-limited": "Too many requests; retry after `Retry-After` seconds (`RateLimit-*` headers say the policy).",
    "locked-out": "Logins are paused after repeated failures; retry after `Retry-After` seconds.",
    "service-unavailable": "A dependency (database, object store, broker) is down; `dependency` names it; retry "
    "after `Retry-After` seconds.",
    "job-time-limit": "A job ran past its kind's time limit (`limit_s`) and was stopped; nothing it made was kept.",
    "job-out-of-memory": "A job needed more memory than a worker process may take (`limit_mb`); nothing was kept.",
    "job-interrupted": "A job's worker was lost on each of its attempts (`attempts`); `last_error` says how.",
}

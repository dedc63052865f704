"""What the SDK raises: an API error carrying the RFC 9457 problem document, a connection error, a job timeout."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from vigil.client.models import Job

PROBLEM_MEDIA_TYPE = "application/problem+json"


class VigilError(Exception):
    """Base of every error the SDK raises on its own."""


class VigilConnectionError(VigilError):
    """The server could not be reached (refused, timed out, reset): nothing is known about the request's effect."""


class JobTimeout(VigilError, TimeoutError):
    """A job did not reach a final state in time; `job` is its last known state."""

    def __init__(self, job: Job, timeout: float) -> None:
        super().__init__(f"job {job.get('id')!r} still {job.get('status')!r} after {timeout:g}s")
        self.job = job
        self.timeout = timeout


class JobFailed(VigilError):
    """A job the caller needed ended failed or cancelled; `job` is its final state, `error` its problem document."""

    def __init__(self, job: Job) -> None:
        error: dict[str, Any] = job.get("error") or {}
        super().__init__(
            f"job {job.get('id')!r} {job.get('status')}: {error.get('detail') or error.get('title') or ''}"
        )
        self.job = job
        self.error = error


class VigilAPIError(VigilError):
    """The server answered with an error status; the problem document's members are attributes.

    `body` is the whole problem document (or ``{}`` when the response was not JSON, e.g. from a proxy).
    """

    def __init__(self, status: int, body: dict[str, Any], *, headers: httpx.Headers, text: str = "") -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.type: str | None = _str_or_none(body.get("type"))
        self.title: str | None = _str_or_none(body.get("title"))
        self.detail: str | None = _str_or_none(body.get("detail")) or (text[:500] or None)
        raw_errors = body.get("errors")
        self.errors: list[dict[str, Any]] = (
            [e for e in raw_errors if isinstance(e, dict)] if isinstance(raw_errors, list) else []
        )
        self.request_id: str | None = _str_or_none(body.get("request_id")) or _str_or_none(headers.get("x-request-id"))
        super().__init__(f"{status} {self.title or 'error'}: {self.detail or ''} (request_id={self.request_id})")

    @property
    def is_problem(self) -> bool:
        """Whether the server sent an RFC 9457 document (it always should)."""
        content_type = str(self.headers.get("content-type", ""))
        return content_type.split(";", maxsplit=1)[0].strip() == PROBLEM_MEDIA_TYPE

    @classmethod
    def from_response(cls, response: httpx.Response) -> VigilAPIError:
        text = response.text
        try:
            parsed = json.loads(text) if text else {}
        except ValueError:
            parsed = {}
        body = parsed if isinstance(parsed, dict) else {}
        return cls(response.status_code, body, headers=response.headers, text=text)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None

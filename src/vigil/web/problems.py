"""RFC 9457: the one place where every error becomes an `application/problem+json` response."""

from __future__ import annotations

import logging
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.core.database import is_database_outage
from vigil.core.errors import VigilError, problem_type_uri
from vigil.core.logging import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = logging.getLogger("vigil.errors")

# The last line of defence against leaking internals through a message that quotes a library: file-system paths
# (absolute, under the usual roots or wherever the server runs from), SQL statements and database driver names
# are cut from every problem's detail and field messages. (Readers already word their own messages; this catches
# what a future one forgets.)
_ROOTS = {"usr", "etc", "var", "tmp", "home", "root", "opt", "proc", "srv", "mnt", "lib", "lib64", "bin", "sbin"}
_ROOTS |= {"dev", "run", "sys", "private", "Users", "Volumes", "nix", "data", "work", "app", "code", "site-packages"}
_ROOTS.update(part for part in (Path.cwd().parts[1:2] + Path(tempfile.gettempdir()).parts[1:2]) if part)
_ROOTS.update(Path(sys.prefix).parts[1:2])
_FS_PATH = re.compile(
    r"(?:[A-Za-z]:\\[^\s'\"]+|/(?:" + "|".join(map(re.escape, sorted(_ROOTS))) + r")(?:/[^\s'\",;)]*)?)"
)
_SQL = re.compile(r"\[SQL: .*?(?:\]|$)|\[parameters: .*?(?:\]|$)|\(Background on this error at: [^)]*\)", re.S)
_DRIVER = re.compile(r"\((?:sqlite3|psycopg|psycopg2|sqlalchemy)(?:\.\w+)*\)\s*")
_TRACEBACK = re.compile(r'Traceback \(most recent call last\):.*|File "[^"]*", line \d+', re.S)


def scrubbed(text: str) -> str:
    """`text` without server paths, SQL or driver names."""
    text = _TRACEBACK.sub("", text)
    text = _SQL.sub("", text)
    text = _DRIVER.sub("", text)
    return _FS_PATH.sub("<path>", text).strip()


_STATUS_SLUGS = {
    400: ("malformed-body", "Malformed request body"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("route-not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Payload too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem_response(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    if isinstance(extra.get("errors"), list):
        extra["errors"] = [
            {**e, "msg": scrubbed(e["msg"])} if isinstance(e, dict) and isinstance(e.get("msg"), str) else e
            for e in extra["errors"]
        ]
    body: dict[str, Any] = {
        "type": problem_type_uri(slug),
        "title": title,
        "status": status,
        "detail": scrubbed(detail),
        "instance": instance,
        "request_id": current_request_id(),
        **extra,
    }
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def database_unavailable(path: str | None) -> JSONResponse:
    return problem_response(
        status=503,
        slug="service-unavailable",
        title="Service unavailable",
        detail="The database is unavailable; nothing was changed. Retry shortly.",
        instance=path,
        headers={"Retry-After": "5"},
        dependency="database",
    )


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for err in exc.errors():
        # The offending input may be huge or hostile: name the field and the rule, never echo the value.
        errors.append(
            {
                "loc": [str(p) for p in err.get("loc", ())],
                "msg": err.get("msg", ""),
                "type": err.get("type", ""),
            }
        )
    return errors


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(VigilError)
    async def _vigil_error(request: Request, exc: VigilError) -> JSONResponse:
        if exc.status >= 500:
            log.error("server error: %s", exc.detail)
        return problem_response(
            status=exc.status,
            slug=exc.slug,
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            headers=exc.headers,
            **exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _field_errors(exc)
        where = ", ".join(".".join(e["loc"]) for e in errors[:5])
        return problem_response(
            status=422,
            slug="invalid-input",
            title="Invalid input",
            detail=f"The request did not validate ({where}).",
            instance=request.url.path,
            errors=errors,
        )

    @app.exception_handler(RecursionError)
    async def _too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # A hostile, deeply nested JSON body exhausts the parser's recursion: the client's fault, not ours.
        return problem_response(
            status=400,
            slug="malformed-body",
            title="Malformed request body",
            detail="The body is nested too deeply to be parsed.",
            instance=request.url.path,
        )

    @app.exception_handler(DBAPIError)
    async def _database_unavailable(request: Request, exc: DBAPIError) -> JSONResponse:
        if isinstance(exc, DataError):
            # The database refused a value the client sent (a NUL character, a number out of range…): their
            # input, not our outage. The transaction is rolled back, so nothing was stored.
            return problem_response(
                status=422,
                slug="invalid-input",
                title="Invalid input",
                detail="A value in the request cannot be stored (for example, it contains a NUL character).",
                instance=request.url.path,
                errors=[],
            )
        if not is_database_outage(exc):
            raise exc
        log.error("database unavailable: %s", type(exc.orig).__name__)
        return database_unavailable(request.url.path)

    @app.exception_handler(PoolTimeout)
    async def _pool_exhausted(request: Request, exc: PoolTimeout) -> JSONResponse:
        log.error("database pool exhausted: no connection within the pool timeout")
        return database_unavailable(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        slug, title = _STATUS_SLUGS.get(exc.status_code, ("internal", "Error"))
        detail = exc.detail if isinstance(exc.detail, str) else title
        if exc.status_code == 404:
            detail = f"No route {request.url.path!r}."
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path!r}."
        return problem_response(
            status=exc.status_code,
            slug=slug,
            title=title,
            detail=detail,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )


class UnhandledErrorMiddleware:
    """Turns an exception nothing else handled into a 500 problem, inside the request context (so it has an id)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            if is_database_outage(exc) and not started:
                # Raised outside the routes (e.g. the idempotency claim): still an outage, not a bug.
                log.error("database unavailable: %s", type(exc).__name__)
                await database_unavailable(scope.get("path"))(scope, receive, send)
                return
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = problem_response(
                status=500,
                slug="internal",
                title="Internal server error",
                detail="An unexpected error occurred; quote the request_id when reporting it.",
                instance=scope.get("path"),
            )
            await response(scope, receive, send)

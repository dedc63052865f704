"""Operational routes: liveness, readiness, Prometheus metrics, and the documentation of problem types."""

from __future__ import annotations

import hmac
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from vigil import __version__
from vigil.core.errors import PROBLEM_TYPES, NotFound, ServiceUnavailable, Unauthorized
from vigil.web.deps import ContextDep

router = APIRouter(tags=["operations"])


@router.get("/health", summary="Liveness: the process is up")
async def health(context: ContextDep) -> dict[str, Any]:
    # `staleness_bound_s`: how long a change made through one API process (a revoked key, a demoted user, a new
    # model version) may take to hold on the others — the credential and lookup caches' lifetime; 0: at once.
    # Clients (the validation suite) wait out this bound, never a guess.
    settings = context.settings
    bound = max(settings.auth_cache_ttl_s, settings.lookup_cache_ttl_s)
    return {"status": "ok", "version": __version__, "staleness_bound_s": bound}


@router.get(
    "/ready",
    summary="Readiness: the database, the blob store and (when configured) the broker answer",
    responses={503: {"description": "A dependency is down (problem+json, with Retry-After)"}},
)
async def ready(context: ContextDep) -> dict[str, Any]:
    checks: dict[str, str] = {}
    for name, probe in context.probes.items():
        try:
            with anyio.fail_after(5):
                # Abandoned, not awaited, when it hangs: a silent database must not make readiness hang too.
                await anyio.to_thread.run_sync(probe, abandon_on_cancel=True)
            checks[name] = "ok"
        except Exception as exc:  # any failure of a dependency means not ready
            checks[name] = f"unavailable: {type(exc).__name__}"
    if any(value != "ok" for value in checks.values()):
        raise ServiceUnavailable("Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()), checks=checks)
    return {"status": "ready", "checks": checks}


@router.get(
    "/metrics",
    summary="Prometheus metrics (with VIGIL_METRICS_TOKEN set: 'Authorization: Bearer <token>')",
    response_class=Response,
    responses={401: {"description": "VIGIL_METRICS_TOKEN is set and this is not it (problem+json)"}},
)
def metrics(context: ContextDep, request: Request) -> Response:
    token = context.settings.metrics_token
    if token is not None:
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(presented.strip().encode(), expected):
            raise Unauthorized("The metrics need the scraper's token: 'Authorization: Bearer <VIGIL_METRICS_TOKEN>'.")
    return Response(context.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/problems", summary="The problem types this API returns")
def problem_types() -> JSONResponse:
    return JSONResponse({f"/problems/{slug}": text for slug, text in PROBLEM_TYPES.items()})


@router.get("/problems/{slug}", summary="What one problem type means")
def problem_type(slug: str) -> dict[str, str]:
    if slug not in PROBLEM_TYPES:
        raise NotFound("problem type", slug)
    return {"type": f"/problems/{slug}", "description": PROBLEM_TYPES[slug]}

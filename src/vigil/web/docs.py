"""The interactive API documentation, served from assets packaged with the server (no CDN, so `/docs` and `/redoc`
render on a machine without internet), and `/`, which sends a visitor to them.

The groups are ordered by a user's path through the product — data first, then what is made from it — with
administration after; FastAPI lists tags in the order `OPENAPI_TAGS` gives them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
# Under /docs, so the documentation's own content-security policy covers the assets' paths too.
ASSETS_URL = "/docs/assets"
ASSETS_DIR = Path(fastapi_offline.__file__).parent / "static"

OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "datasets", "description": "Upload tabular data; profile, assess and analyse it; download it."},
    {"name": "detectors", "description": "The algorithm catalog; create, train and run detectors; feedback, versions."},
    {"name": "jobs", "description": "Long work (training, scoring, reports): wait for it, follow it, cancel it."},
    {"name": "streams", "description": "Online detection, event by event, over HTTP or a WebSocket."},
    {"name": "auth", "description": "Log in, refresh and end sessions; who the caller is."},
    {"name": "api keys", "description": "Scoped keys for machines."},
    {"name": "users", "description": "The users of a tenant (tenant admin)."},
    {"name": "tenant settings", "description": "A tenant's own configuration (tenant admin)."},
    {"name": "tenants", "description": "Tenants, quotas, usage, export (superadmin)."},
    {"name": "audit", "description": "The tenant's audit log."},
    {"name": "operations", "description": "Liveness, readiness, metrics and the problem types."},
]

router = APIRouter(include_in_schema=False)


@router.api_route("/", methods=["GET", "HEAD"])
async def landing() -> RedirectResponse:
    return RedirectResponse(DOCS_URL)


@router.get(DOCS_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = request.scope.get("root_path", "")
    return get_swagger_ui_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} — API",
        oauth2_redirect_url=f"{root}{DOCS_URL}/oauth2-redirect",
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        swagger_ui_parameters=app.swagger_ui_parameters,
    )


@router.get(f"{DOCS_URL}/oauth2-redirect")
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = request.scope.get("root_path", "")
    return get_redoc_html(
        openapi_url=f"{root}{app.openapi_url}",
        title=f"{app.title} — API reference",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        with_google_fonts=False,  # a font from the internet would be the one request that cannot be served here
    )


def hoist_definitions(document: dict[str, Any]) -> dict[str, Any]:
    """Moves the `$defs` of hand-written schemas (a route's `openapi_extra`, built with `model_json_schema(
    ref_template="#/components/schemas/{model}")`) into the components their references point at: left nested,
    those references dangle, and ReDoc refuses the whole document."""
    components: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, schema in (node.pop("$defs", None) or {}).items():
                components.setdefault(name, schema)
                walk(schema)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document.get("paths", {}))
    return document


def install_docs(app: FastAPI) -> None:
    """Mounts the documentation on an app built with `docs_url=None, redoc_url=None`, and makes its OpenAPI
    document self-contained."""
    app.mount(ASSETS_URL, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
    app.include_router(router)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = hoist_definitions(generate())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

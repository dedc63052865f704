"""`create_app(settings)`: the one place where routers, middleware, error handlers and workers are wired."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from vigil import __version__
from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.context import AppContext
from vigil.core.database import Database, build_engine
from vigil.core.logging import configure_logging
from vigil.core.metrics import Metrics
from vigil.core.secrets import resolve_secret_key
from vigil.datasets import tasks as dataset_tasks
from vigil.datasets.retention import sweep_expired
from vigil.datasets.router import router as datasets_router
from vigil.detectors import tasks as detector_tasks
from vigil.detectors.router import router as detectors_router
from vigil.detectors.service import scorer_for
from vigil.identity.dependencies import IdentityRuntime, limit_by_ip
from vigil.identity.quotas import concurrent_job_caps
from vigil.identity.router import router as identity_router
from vigil.identity.service import bootstrap_superadmin
from vigil.jobs.registry import JobRegistry
from vigil.jobs.router import router as jobs_router
from vigil.jobs.runner import InProcessRunner
from vigil.migrations.runner import upgrade_database
from vigil.streams.router import router as streams_router
from vigil.streams.router import ws_router as streams_ws_router
from vigil.streams.state import StreamRuntime
from vigil.tenants.router import router as tenants_router
from vigil.web.body_limits import BodySizeLimitMiddleware
from vigil.web.idempotency import IdempotencyMiddleware
from vigil.web.metrics import MetricsMiddleware
from vigil.web.operations import router as operations_router
from vigil.web.problems import UnhandledErrorMiddleware, install_problem_handlers
from vigil.web.request_context import RequestContextMiddleware
from vigil.web.security_headers import SecurityHeadersMiddleware

API_PREFIX = "/api/v1"
API_ROUTERS = (identity_router, tenants_router, datasets_router, detectors_router, jobs_router, streams_router)
log = logging.getLogger("vigil")


def build_registry() -> JobRegistry:
    registry = JobRegistry()
    detector_tasks.register(registry)
    # Analysis reports may measure feature relevance with a detector: the datasets domain declares the port,
    # the detectors domain (above it) implements it, and here is where the two meet.
    dataset_tasks.register(registry, scorers=scorer_for)
    return registry


def create_app(settings: Settings | None = None, *, run_workers: bool = True) -> FastAPI:
    settings = settings or Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    database = Database(settings)
    context = AppContext(
        settings=settings,
        database=database,
        blobs=BlobStore(settings.blob_root),
        secret_key=resolve_secret_key(settings),
        metrics=Metrics(),
    )
    identity = IdentityRuntime.build(settings=settings, key=context.secret_key)
    runner = InProcessRunner(
        app=context,
        registry=build_registry(),
        workers=settings.job_workers,
        tenant_caps=lambda session, tenants: concurrent_job_caps(session, tenants, settings),
    )
    runner.add_housekeeping(
        "retention", every_s=settings.retention_sweep_interval_s, chore=lambda: sweep_expired(context)
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.database_admin_url and settings.database_admin_url != settings.database_url_resolved:
            owner = build_engine(settings, admin=True)  # migrations as the schema owner, the app as its own role
            try:
                upgrade_database(owner)
            finally:
                owner.dispose()
        else:
            upgrade_database(database.engine)
        with database.session() as session:
            generated = bootstrap_superadmin(
                session=session,
                passwords=identity.passwords,
                email=settings.bootstrap_admin_email,
                password=settings.bootstrap_admin_password.get_secret_value()
                if settings.bootstrap_admin_password
                else None,
            )
        if generated:
            # Shown once, on the console only: it is not kept anywhere in clear.
            print(
                f"\n  Vigil superadmin created: {generated[0]} / {generated[1]}\n  (shown once; keep it)\n",
                flush=True,
            )
        if run_workers:
            runner.start()
        try:
            yield
        finally:
            runner.stop()
            database.dispose()

    app = FastAPI(
        title="Vigil",
        version=__version__,
        description="Multi-tenant anomaly detection: upload data, train detectors, score anomalies.",
        lifespan=lifespan,
    )
    app.state.context = context
    app.state.identity = identity
    app.state.runner = runner
    app.state.scorers = scorer_for  # read by the datasets router (see build_registry)
    app.state.streams = StreamRuntime(capacity=settings.stream_hot_models)  # hot stream models of this process

    install_problem_handlers(app)
    app.include_router(operations_router)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(limit_by_ip)])
    app.include_router(streams_ws_router, prefix=API_PREFIX)  # authenticates and limits in its first frame

    # Added innermost first: the request context wraps everything, so every line and problem has its id.
    app.add_middleware(IdempotencyMiddleware, database=database, resolve_principal=identity.principal_key)
    app.add_middleware(
        BodySizeLimitMiddleware, max_bytes=settings.max_upload_bytes, max_json_bytes=settings.max_json_body_bytes
    )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware)
    return app

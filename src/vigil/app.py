"""`create_app(settings)`: the one place where routers, middleware, error handlers and workers are wired — and
`build_context`, which `vigil worker` shares, so a worker process sees the same job kinds, blobs and broker."""

from __future__ import annotations

import gc
import logging
import os
import re
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
from fastapi import Depends, FastAPI

from vigil import __version__, analysis, ml
from vigil.config import Settings
from vigil.core.blob_sweep import BlobFamilies, BlobFamily, no_rows, sweep_orphan_blobs
from vigil.core.blobs import BlobStore
from vigil.core.caching import CommitInvalidatedCache, invalidate_on_commit
from vigil.core.clientinfo import parse_networks
from vigil.core.context import AppContext
from vigil.core.database import Database, build_engine, claim_sqlite_file
from vigil.core.idempotency import IdempotencyStore
from vigil.core.logging import configure_logging
from vigil.core.metrics import Metrics
from vigil.core.secrets import resolve_secret_key
from vigil.datasets import tasks as dataset_tasks
from vigil.datasets.retention import sweep_expired
from vigil.datasets.router import router as datasets_router
from vigil.datasets.service import dataset_blob_keys, dataset_blob_refs, dataset_bytes
from vigil.detectors import tasks as detector_tasks
from vigil.detectors.models import Detector, ModelVersion
from vigil.detectors.router import TABLE_MEDIA_TYPES
from vigil.detectors.router import router as detectors_router
from vigil.detectors.service import model_blob_keys, model_blob_refs, model_bytes, scorer_for
from vigil.identity.dependencies import IdentityRuntime, limit_by_ip
from vigil.identity.quotas import StorageMeter, concurrent_job_caps, retention_days_of
from vigil.identity.router import router as identity_router
from vigil.identity.service import bootstrap_superadmin
from vigil.jobs.broker import Broker
from vigil.jobs.dispatcher import Dispatcher
from vigil.jobs.keeper import Keeper, job_metrics, prune_job_records
from vigil.jobs.lifecycle import JobLifecycle
from vigil.jobs.registry import JobRegistry
from vigil.jobs.router import router as jobs_router
from vigil.jobs.runner import InProcessRunner
from vigil.jobs.service import scratch_blob_refs
from vigil.migrations.runner import upgrade_database
from vigil.streams.router import router as streams_router
from vigil.streams.router import ws_router as streams_ws_router
from vigil.streams.state import StreamRuntime
from vigil.tenants.router import router as tenants_router
from vigil.web import idempotency
from vigil.web.body_limits import BodyLimitRule, BodySizeLimitMiddleware
from vigil.web.contract import install_contract
from vigil.web.deadline import RequestDeadlineMiddleware
from vigil.web.docs import OPENAPI_TAGS, install_docs
from vigil.web.metrics import MetricsMiddleware
from vigil.web.operations import router as operations_router
from vigil.web.problems import UnhandledErrorMiddleware, install_problem_handlers
from vigil.web.request_context import RequestContextMiddleware
from vigil.web.security_headers import SecurityHeadersMiddleware

API_PREFIX = "/api/v1"
# A request is routed by trying each route in turn (FastAPI matches an included router's routes twice), so each
# domain's router is an `IndexedRouter` (web/routing.py): a router before the one that matches costs a set lookup,
# not a try of each of its routes (measured in process, matching only: GET /api/v1/detectors 48 -> 36 us, GET /me
# 86 -> 39 us, GET /jobs 139 -> 28 us). No two routers' paths overlap, so the order changes which route answers
# nothing (only the order of paths in the OpenAPI document).
API_ROUTERS = (streams_router, detectors_router, identity_router, tenants_router, datasets_router, jobs_router)
JOB_RECORDS_SWEEP_S = 3600.0
IDEMPOTENCY_SWEEP_S = 600.0
BLOB_SWEEP_S = 3600.0
log = logging.getLogger("vigil")


def build_registry(settings: Settings) -> JobRegistry:
    registry = JobRegistry()
    detector_tasks.register(registry)
    # Analysis reports may measure feature relevance with a detector: the datasets domain declares the port,
    # the detectors domain (above it) implements it, and here is where the two meet.
    dataset_tasks.register(registry, scorers=scorer_for)
    return registry.with_limits(settings.job_time_limits)


def blob_families() -> BlobFamilies:
    """What the orphan-blob sweep may delete under each tenant's prefix, and which rows refer to it: each domain that
    stores blobs lends its referrer (`vigil.core.blob_sweep`)."""
    return BlobFamilies(
        (
            BlobFamily("datasets", dataset_blob_refs, dataset_blob_keys),  # uploads and detection results
            BlobFamily("models", model_blob_refs, model_blob_keys),  # model artifacts
            BlobFamily("jobs", scratch_blob_refs),  # partitioned jobs' scratch
            BlobFamily("staging", no_rows),  # a local store's staged uploads (renamed into place when recorded)
        )
    )


def build_context(settings: Settings) -> AppContext:
    """Settings, database, blob store, secret, metrics, the job kinds — and the broker, when one is configured."""
    database = Database(settings)
    blobs = BlobStore.from_settings(settings)
    context = AppContext(
        settings=settings,
        database=database,
        blobs=blobs,
        secret_key=resolve_secret_key(settings),
        metrics=Metrics(),
        lookups=CommitInvalidatedCache(ttl_s=settings.lookup_cache_ttl_s),
    )
    invalidate_on_commit(database.sessions, (Detector, ModelVersion), context.lookups)
    context.provide(build_registry(settings))
    # The storage quota counts what every domain stores: each lends its counter.
    context.provide(StorageMeter((dataset_bytes, model_bytes)))
    context.provide(blob_families())
    context.probes.update({"database": database.ping, "blob_store": blobs.ping})
    if settings.broker_url is not None:
        broker = Broker(settings)
        context.provide(broker)
        context.probes["broker"] = broker.ping
    return context


def build_lifecycle(context: AppContext) -> JobLifecycle:
    settings = context.settings
    return JobLifecycle(
        app=context,
        registry=context.component(JobRegistry),
        tenant_caps=lambda session, tenants: concurrent_job_caps(session, tenants, settings),
    )


class JobBackground:
    """What runs behind the API: with no broker, the in-process executor (threads); with one, the outbox
    dispatcher. Either way a keeper for recovery and the housekeeping chores."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        lifecycle = build_lifecycle(context)
        broker = context.find(Broker)
        self.runner: InProcessRunner | None = None
        self.dispatcher: Dispatcher | None = None
        if broker is None:
            self.runner = InProcessRunner(app=context, lifecycle=lifecycle, workers=context.settings.job_workers)
            self.keeper = self.runner.keeper
        else:
            self.dispatcher = Dispatcher(app=context, registry=lifecycle.registry, broker=broker)
            self.keeper = Keeper(app=context, lifecycle=lifecycle, node=None)
        settings = context.settings
        self._threads: list[threading.Thread] = []  # chores running in threads of their own
        self._chore("retention", settings.retention_sweep_interval_s, lambda: sweep_expired(context))
        self._chore(
            "job-records",
            JOB_RECORDS_SWEEP_S,
            lambda: prune_job_records(context, lambda s, t: retention_days_of(s, t, settings)),
        )
        # Out of the request path: requests only claim and finish their own keys.
        self._chore("idempotency-records", IDEMPOTENCY_SWEEP_S, IdempotencyStore(context.database).prune)
        # Blobs a crash (or a clean-up that failed) left without a row. In a thread of its own: listing a large
        # bucket may take minutes, which must delay neither start-up nor the keeper's heartbeats (a node silent
        # past the lease has its running jobs requeued elsewhere).
        self._chore(
            "orphan-blobs",
            BLOB_SWEEP_S,
            lambda: sweep_orphan_blobs(
                database=context.database,
                blobs=context.blobs,
                families=context.component(BlobFamilies).families,
                grace_s=settings.blob_orphan_grace_s,
                metrics=context.metrics,
            ),
            in_thread=True,
        )

    def _chore(self, name: str, every_s: float, chore: Callable[[], object], *, in_thread: bool = False) -> None:
        database = self.context.database

        def exclusively() -> None:
            # Every API process schedules the chore; one of them at a time does it.
            with database.exclusive(name) as mine:
                if mine:
                    chore()

        if not in_thread:
            self.keeper.add_chore(name, every_s=every_s, chore=exclusively)
            return
        busy = threading.Lock()

        def in_background() -> None:
            try:
                exclusively()
            except Exception:  # the next round retries
                log.exception("housekeeping %s failed", name)
            finally:
                busy.release()

        def launch() -> None:
            if busy.acquire(blocking=False):  # else the last run is still going: this round is skipped
                thread = threading.Thread(target=in_background, name=f"vigil-{name}", daemon=True)
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()

        self.keeper.add_chore(name, every_s=every_s, chore=launch)

    def start(self) -> None:
        if self.runner is not None:
            self.runner.start()
        else:
            self.keeper.start()
            assert self.dispatcher is not None
            self.dispatcher.start()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        else:
            if self.dispatcher is not None:
                self.dispatcher.stop()
            self.keeper.stop()
        # Before the database is disposed of (a run cut short by the process's end is harmless: each deletion is
        # whole, and the next run goes on); a long run is not waited for.
        for thread in self._threads:
            thread.join(timeout=5.0)


def migrate(settings: Settings, database: Database) -> None:
    """Applies the migrations: as the schema owner when one is configured (the app runs as its own role)."""
    if settings.database_admin_url and settings.database_admin_url != settings.database_url_resolved:
        owner = build_engine(settings, admin=True)
        try:
            upgrade_database(owner)
        finally:
            owner.dispose()
    else:
        upgrade_database(database.engine)


def import_libraries() -> None:
    """The scientific libraries that start-up leaves to their first use, imported now (seconds each)."""
    ml.warm_up()
    analysis.warm_up()


def _warm_imports(metrics: Metrics) -> None:
    """After start, in the background: the libraries that start-up leaves to their first use (seconds each). The
    imports hold the interpreter lock most of that time, so requests meanwhile are slower: `/metrics` says when
    it is over (a benchmark waits for it)."""
    import_libraries()
    # What exists now (the libraries' modules, classes and caches) lives as long as the process: out of the
    # collector's reach, a full collection no longer walks it. Measured on the stream benchmark: the collector's
    # time per batch of 100 events fell from ~0.5 ms to ~0.1 ms.
    gc.freeze()
    metrics.warm.set(1)


def create_app(settings: Settings | None = None, *, run_workers: bool = True) -> FastAPI:
    settings = settings or Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    context = build_context(settings)
    database = context.database
    identity = IdentityRuntime.build(settings=settings, key=context.secret_key, sessions=database.sessions)
    background = JobBackground(context)
    context.metrics.add_collector(lambda: job_metrics(context))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Made here, inside the event loop it belongs to.
        app.state.scoring = anyio.CapacityLimiter(settings.scoring_concurrency or os.cpu_count() or 2)
        if settings.gil_switch_interval_ms:
            # Every request passes through the event loop thread several times; while a training or a scoring holds
            # the interpreter lock, each pass waits up to one switch interval for it.
            sys.setswitchinterval(settings.gil_switch_interval_ms / 1000)
        claim_sqlite_file(settings)  # SQLite is one process's file: a second server is refused
        # Servers starting together (`vigil serve --workers N`, several machines) migrate and bootstrap in turn.
        with database.serialized("startup"):
            if settings.migrate_on_start:
                migrate(settings, database)
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
                f"\n  Vigil superadmin created: {generated[0]} / {generated[1]}\n"
                "  (shown once; keep it — lost, it is reset with `vigil admin reset-password`)\n",
                flush=True,
            )
        if run_workers:
            background.start()
        if settings.warm_imports:
            threading.Thread(
                target=_warm_imports, args=(context.metrics,), name="vigil-warm-imports", daemon=True
            ).start()
        try:
            yield
        finally:
            background.stop()
            broker = context.find(Broker)
            if broker is not None:
                broker.close()
            database.dispose()

    app = FastAPI(
        title="Vigil",
        version=__version__,
        description="Multi-tenant anomaly detection: upload data, train detectors, score anomalies.",
        lifespan=lifespan,
        openapi_tags=OPENAPI_TAGS,
        docs_url=None,  # served from packaged assets by install_docs, not from a CDN
        redoc_url=None,
    )
    app.state.context = context
    app.state.identity = identity
    app.state.runner = background.runner
    app.state.jobs = background
    app.state.scorers = scorer_for  # read by the datasets router (see build_registry)
    app.state.streams = StreamRuntime(capacity=settings.stream_hot_models)  # hot stream models of this process

    install_problem_handlers(app)
    install_contract(app)
    app.include_router(operations_router)
    install_docs(app)
    for router in API_ROUTERS:
        app.include_router(router, prefix=API_PREFIX, dependencies=[Depends(limit_by_ip)])
    app.include_router(streams_ws_router, prefix=API_PREFIX)  # authenticates and limits in its first frame

    install_middleware(app, settings, context, database)
    return app


def install_middleware(app: FastAPI, settings: Settings, context: AppContext, database: Database) -> None:
    # Added innermost first: the request context wraps everything, so every line and problem has its id.
    idempotency.install(app, database=database, lease_s=settings.idempotency_lease_s)
    app.add_middleware(
        BodySizeLimitMiddleware,
        default_max_bytes=settings.max_json_body_bytes,
        rules=body_limit_rules(settings),
        max_parsed_bytes=settings.max_decoded_bytes,
    )
    app.add_middleware(MetricsMiddleware, metrics=context.metrics)
    app.add_middleware(RequestDeadlineMiddleware, seconds=settings.request_timeout_s)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(
        SecurityHeadersMiddleware,
        trusted_proxies=parse_networks(settings.trusted_proxies),
        hsts_max_age_s=settings.hsts_max_age_s,
    )
    app.add_middleware(RequestContextMiddleware)


def body_limit_rules(settings: Settings) -> list[BodyLimitRule]:
    """Which routes may receive more than a JSON body: the uploads (streamed to disk) — and which far less: the
    credential routes, which anyone can call before authenticating. Detection takes a JSON body's limit, but a
    Parquet or Arrow body is read as a table (charged from its metadata), never parsed as JSON: it has its own."""
    return [
        BodyLimitRule(re.compile(f"{API_PREFIX}/auth/.*"), settings.max_auth_body_bytes),
        BodyLimitRule(
            re.compile(f"{API_PREFIX}/detectors/[^/]+/detect"),
            settings.max_json_body_bytes,
            method="POST",
            table_media=TABLE_MEDIA_TYPES,
            table_max_bytes=settings.max_detect_table_bytes,
        ),
        BodyLimitRule(re.compile(f"{API_PREFIX}/datasets/?"), settings.max_upload_bytes, method="POST", streamed=True),
        BodyLimitRule(
            re.compile(f"{API_PREFIX}/detectors/[^/]+/versions/import"),
            settings.max_upload_bytes,
            method="POST",
            streamed=True,
        ),
    ]


def create_app_from_environment() -> FastAPI:
    """The factory `vigil serve --workers N` hands to uvicorn: each worker process builds its own app from the
    same `VIGIL_*` environment."""
    return create_app(Settings())

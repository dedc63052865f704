"""Prometheus metrics: requests, latencies, jobs and streams, and the process itself (CPU seconds, resident memory,
open files, threads, garbage collections), on a registry per app so tests don't share counters.

Figures that belong to the whole deployment rather than to one process (queue depth per kind, running jobs per
tenant, executor heartbeats) are read from the database at scrape time by a collector the app registers
(`add_collector`), so every API process reports the same numbers."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

JOB_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


class _Collect(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vigil_http_requests_total",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vigil_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.jobs = Counter("vigil_jobs_total", "Jobs finished", ["kind", "status"], registry=self.registry)
        self.job_duration = Histogram(
            "vigil_job_duration_seconds",
            "A job's own run time (its handler), by kind",
            ["kind"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.job_wait = Histogram(
            "vigil_job_wait_seconds",
            "Time a job waited in the queue before it started, by kind",
            ["kind"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.jobs_running = Gauge("vigil_jobs_running", "Jobs running in this process now", registry=self.registry)
        self.stream_events = Counter(
            "vigil_stream_events_total",
            "Stream events answered: new (scored and learnt), duplicate or late",
            ["status"],
            registry=self.registry,
        )
        self.stream_anomalies = Counter("vigil_stream_anomalies_total", "Stream events flagged", registry=self.registry)
        self.stream_drifts = Counter(
            "vigil_stream_drifts_total", "Drift detected in streams' scores (ADWIN)", registry=self.registry
        )
        self.stream_state_loads = Counter(
            "vigil_stream_state_loads_total",
            "Stream models brought to the stored version: from a snapshot (load) or the log of another process "
            "(catch_up)",
            ["how"],
            registry=self.registry,
        )
        self.stream_sockets = Gauge("vigil_stream_websockets", "Stream WebSockets open", registry=self.registry)
        self.orphan_blobs = Counter(
            "vigil_orphan_blobs_deleted_total", "Blobs no row referred to, deleted by the sweep", registry=self.registry
        )
        self.orphan_blob_bytes = Counter(
            "vigil_orphan_blob_bytes_deleted_total", "Bytes of orphan blobs deleted", registry=self.registry
        )
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds… (read from /proc on Linux)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)  # python_gc_collections_total, objects collected, uncollectable
        PlatformCollector(registry=self.registry)
        self.warm = Gauge(
            "vigil_detector_libraries_warm",
            "1 once the detector libraries were imported in the background after start (VIGIL_WARM_IMPORTS)",
            registry=self.registry,
        )
        threads = Gauge("vigil_process_threads", "Threads in the server process", registry=self.registry)
        threads.set_function(threading.active_count)

    def add_collector(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Metrics computed at scrape time (e.g. from the database)."""
        self.registry.register(_Collect(collect))

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics: requests, latencies, jobs and streams, on a registry per app so tests don't share counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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
        self.job_duration = Histogram("vigil_job_duration_seconds", "Job run time", ["kind"], registry=self.registry)
        self.jobs_running = Gauge("vigil_jobs_running", "Jobs running now", registry=self.registry)
        self.stream_events = Counter(
            "vigil_stream_events_total",
            "Stream events answered: new (scored and learnt), duplicate or late",
            ["status"],
            registry=self.registry,
        )
        self.stream_anomalies = Counter("vigil_stream_anomalies_total", "Stream events flagged", registry=self.registry)
        self.stream_state_loads = Counter(
            "vigil_stream_state_loads_total",
            "Stream models brought to the stored version: from a snapshot (load) or the log of another process "
            "(catch_up)",
            ["how"],
            registry=self.registry,
        )
        self.stream_sockets = Gauge("vigil_stream_websockets", "Stream WebSockets open", registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)

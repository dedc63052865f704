"""Prometheus metrics: requests, latencies and jobs, on a registry per app so tests don't share counters."""

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

    def render(self) -> bytes:
        return generate_latest(self.registry)

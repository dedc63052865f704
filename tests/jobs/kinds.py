"""Job kinds that misbehave on purpose — hang, hog memory, kill their own process, outrun a soft limit — for the
failure-mode tests of real worker processes. Registered in the test's API app and in `tests.jobs.worker_main`."""

from __future__ import annotations

import os
import signal
import time

import numpy as np

from vigil.jobs.registry import JobContext, JobLimits, JobOutcome, JobRegistry

ECHO, HANG, HOG, SUICIDE, SPIN = "test.echo", "test.hang", "test.hog", "test.suicide", "test.spin"
HANG_LIMIT_S = 2.0
SOFT_LIMIT_S = 1.0


def echo(ctx: JobContext) -> JobOutcome:
    ctx.progress(50)
    return JobOutcome(result={"echo": ctx.payload.get("value"), "pid": os.getpid()})


def hang(ctx: JobContext) -> JobOutcome:
    time.sleep(3600)  # no progress reports: only the hard limit can end it
    return JobOutcome(result={})


def hog(ctx: JobContext) -> JobOutcome:
    block = np.ones(int(ctx.payload["mb"]) * 1024 * 1024 // 8)  # more than a worker child may take
    return JobOutcome(result={"sum": float(block.sum())})


def suicide(ctx: JobContext) -> JobOutcome:
    os.kill(os.getpid(), signal.SIGKILL)  # what the kernel's OOM killer or a segfault looks like from outside
    return JobOutcome(result={})


def spin(ctx: JobContext) -> JobOutcome:
    while True:  # reports progress, never finishes: the soft limit ends it cleanly
        ctx.progress(1)
        time.sleep(0.05)


def register_test_kinds(registry: JobRegistry) -> JobRegistry:
    registry.register(ECHO, echo)
    registry.register(HANG, hang, limits=JobLimits(time_limit_s=HANG_LIMIT_S))
    registry.register(HOG, hog)
    registry.register(SUICIDE, suicide, limits=JobLimits(max_attempts=3))
    registry.register(SPIN, spin, limits=JobLimits(soft_time_limit_s=SOFT_LIMIT_S, time_limit_s=30))
    return registry

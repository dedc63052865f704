"""`vigil worker` with the test kinds added (`python -m tests.jobs.worker_main --concurrency N`): the real worker
(`vigil.jobs.worker.run_worker`, the app's own job kinds) in a real process, plus kinds that misbehave on purpose."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("REMAP_SIGTERM", "SIGQUIT")  # as `vigil worker` does, before billiard is imported

from tests.jobs.kinds import register_test_kinds
from vigil.app import build_context, build_lifecycle, import_libraries
from vigil.config import Settings
from vigil.core.logging import configure_logging
from vigil.jobs.registry import JobRegistry
from vigil.jobs.worker import WorkerOptions, run_worker


def main(argv: list[str]) -> int:
    concurrency = int(argv[argv.index("--concurrency") + 1]) if "--concurrency" in argv else 1
    settings = Settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    context = build_context(settings)
    register_test_kinds(context.component(JobRegistry))
    options = WorkerOptions(concurrency=concurrency, loglevel="WARNING", preload=import_libraries)
    return run_worker(context, build_lifecycle(context), options)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Builds and runs one validation session: load the config, bring up the target (managed or remote), run pytest
over the selected suites in a subprocess (xdist workers share the one target), and write the reports.

The performance suite measures the target, so it never shares the machine with the other suites: when a selection
holds it and others, the others run first (in parallel), then it runs alone, serially. So do single tests that
measure the server (marked `alone`: a noisy neighbour's latency, peak memory), after the parallel ones of their
suites. The phases' summaries are merged into one (`summary.json`), and the HTML report (`report.html`) is drawn
from it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from rich.console import Console

from vigil_validation import handover
from vigil_validation.cluster import ClusterOptions, cluster_target
from vigil_validation.config import ConfigError, ValidationConfig, admin_credentials, load_config
from vigil_validation.console import print_header, print_server_trouble, print_summary
from vigil_validation.html_report import write_html_report
from vigil_validation.report import load_summary, merge_summaries
from vigil_validation.targets import Target, TargetUnreachable, managed_target, remote_target

PACKAGE_DIR = Path(__file__).parent
SUITES_DIR = PACKAGE_DIR / "suites"
PYTEST_INI = PACKAGE_DIR / "pytest.ini"
# The suites that each run by themselves, serially, after the others: the performance suite measures the target,
# and the disaster-recovery suite starts a deployment of its own and kills its processes (one per session).
ALONE = ("disaster_recovery", "performance")


class ExitCode(IntEnum):
    PASSED = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3


class UsageError(Exception):
    """Bad command-line usage (e.g. an unknown suite): exit code 2."""


@dataclass(frozen=True)
class Selection:
    """Which tests: whole suites (folders) and an optional marker expression."""

    name: str
    suites: tuple[str, ...] = ()
    markers: str | None = None


@dataclass(frozen=True)
class RunOptions:
    config_path: Path | None = None
    target_url: str | None = None
    parallel: int | None = None
    report_dir: Path = Path("validation-reports")
    database_url: str | None = None
    redis_url: str | None = None
    cluster: bool = False
    extra_pytest_args: tuple[str, ...] = ()
    profile: str | None = None  # the performance suite's profile: short or full (CI=true: short)
    exclude_suites: tuple[str, ...] = ()
    fuzz_examples: int | None = None  # the contracts suite's Schemathesis examples per operation (--fuzz-examples)
    baseline_spec: str | None = None  # an older OpenAPI document the served one must not break (--baseline)
    dr_faults: int | None = None  # the disaster-recovery schedule's length and seed (`--faults N --seed S`)
    dr_seed: int | None = None


def available_suites() -> list[str]:
    return sorted(p.name for p in SUITES_DIR.iterdir() if p.is_dir() and any(p.glob("test_*.py")))


def selected_suites(selection: Selection, exclude: tuple[str, ...] = ()) -> list[str]:
    known = available_suites()
    unknown = [s for s in (*selection.suites, *exclude) if s not in known]
    if unknown:
        raise UsageError(f"unknown suite {', '.join(unknown)!s}; the suites are: {', '.join(known)}")
    return [s for s in (selection.suites or tuple(known)) if s not in exclude]


@dataclass(frozen=True)
class Phase:
    """One pytest session of the run: its suites, its workers, and where its own reports go."""

    name: str
    suites: tuple[str, ...]
    parallel: int
    junit: str
    summary: str
    markers: str | None = None  # a pytest -m expression


def _both(*expressions: str | None) -> str | None:
    """The -m expression selecting what every one of `expressions` selects (None: everything)."""
    return " and ".join(f"({e})" for e in expressions if e) or None


def phases(selection: Selection, config: ValidationConfig, exclude: tuple[str, ...] = ()) -> list[Phase]:
    suites = selected_suites(selection, exclude)
    markers = selection.markers
    together = tuple(s for s in suites if s not in ALONE)
    result = []
    if together:
        parallel = config.environment.parallel
        # A test marked `alone` measures the server: another test's load beside it would be its noise.
        parallel_tests, tests_alone = _both(markers, "not alone"), _both(markers, "alone")
        result.append(Phase("suites", together, parallel, "junit.xml", "summary-suites.json", parallel_tests))
        result.append(Phase("alone", together, 1, "junit-alone.xml", "summary-alone.json", tests_alone))
    alone = [s for s in ALONE if s in suites]
    for suite in alone:
        junit = "junit.xml" if not together and len(alone) == 1 else f"junit-{suite}.xml"
        result.append(Phase(suite, (suite,), 1, junit, f"summary-{suite}.json", markers))
    return result


def pytest_command(phase: Phase, config: ValidationConfig, report_dir: Path, extra: tuple[str, ...]) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(PYTEST_INI),
        "--rootdir",
        str(PACKAGE_DIR),
        "-p",
        "no:cacheprovider",
        # Plugin autoloading is off (see `run`): exactly these plugins, whatever else is installed.
        "-p",
        "pytest_timeout",
        "-p",
        "vigil_validation.plugin",
        f"--junitxml={report_dir / phase.junit}",
        "-o",
        f"timeout={config.environment.test_timeout_s:g}",
        *(str(SUITES_DIR / suite) for suite in phase.suites),
    ]
    if phase.markers:
        command += ["-m", phase.markers]
    if phase.parallel > 1:
        # Whole modules per worker: a module's tests share its set-up costs, and the order within it is kept.
        command += ["-p", "xdist.plugin", "-n", str(phase.parallel), "--dist", "loadfile"]
    return [*command, *extra]


@contextlib.contextmanager
def open_target(config: ValidationConfig, report_dir: Path, *, cluster: bool = False) -> Iterator[Target]:
    env = config.environment
    if cluster:
        if env.target_url:
            raise UsageError("--cluster starts its own deployment; it cannot be combined with --target")
        options = ClusterOptions(
            # --database-url / --redis-url name the servers the cluster uses, like a managed target's.
            database_url=env.database_url or config.cluster.database_url,
            redis_url=env.redis_url or config.cluster.redis_url,
            broker_url=config.cluster.broker_url,
            api_processes=config.cluster.api_processes,
            workers=config.cluster.workers,
            worker_concurrency=config.cluster.worker_concurrency,
            object_store_url=config.cluster.object_store_url,
            startup_timeout=max(env.startup_timeout_s, 120.0),
            keep_data=env.keep_data,
            server_env=env.server_env,
        )
        with cluster_target(report_dir=report_dir, options=options) as target:
            yield target
        return
    if env.target_url:
        email, password = admin_credentials(config)
        if not email or not password:
            raise UsageError(
                "a remote target needs superadmin credentials: set VIGIL_VALIDATION_ADMIN_EMAIL and "
                "VIGIL_VALIDATION_ADMIN_PASSWORD (or environment.admin_email / admin_password in the config)"
            )
        # A live deployment is either up or not: a few seconds cover a blip, a long wait only delays exit code 3.
        yield remote_target(env.target_url, email=email, password=password, timeout=min(env.startup_timeout_s, 3))
        return
    with managed_target(
        report_dir=report_dir,
        database_url=env.database_url,
        redis_url=env.redis_url,
        startup_timeout=env.startup_timeout_s,
        keep_data=env.keep_data,
        server_env=env.server_env,
    ) as target:
        yield target


def run(selection: Selection, options: RunOptions, console: Console | None = None) -> ExitCode:
    """The whole run; returns the exit code (0 passed, 1 failures, 2 bad usage or config, 3 unreachable)."""
    console = console or Console(stderr=True)
    try:
        config = (
            load_config(options.config_path)
            .with_environment(
                target_url=options.target_url,
                parallel=options.parallel,
                database_url=options.database_url,
                redis_url=options.redis_url,
            )
            .with_profile(options.profile or ("short" if os.environ.get("CI") == "true" else None))
            .with_contracts(fuzz_examples=options.fuzz_examples, baseline_spec=options.baseline_spec)
            .with_fault_schedule(faults=options.dr_faults, seed=options.dr_seed)
        )
        planned = phases(selection, config, options.exclude_suites)  # an unknown suite fails before anything starts
    except (ConfigError, UsageError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return ExitCode.USAGE
    report_dir = options.report_dir.resolve()
    report_dir.mkdir(parents=True, exist_ok=True)
    summary_path = report_dir / "summary.json"
    for stale in (summary_path, *(report_dir / phase.summary for phase in planned)):
        stale.unlink(missing_ok=True)
    returncodes: list[int] = []
    server_log = None
    try:
        with open_target(config, report_dir, cluster=options.cluster) as target:
            server_log = target.server_log
            print_header(console, selection.name, target, config)
            for phase in planned:
                if len(planned) > 1:
                    console.print(f"[bold]{phase.name}[/]: {', '.join(phase.suites)} ({phase.parallel} worker(s))")
                returncodes.append(run_phase(phase, target, config, report_dir, options.extra_pytest_args))
    except UsageError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return ExitCode.USAGE
    except TargetUnreachable as exc:
        console.print(f"[bold red]target unreachable:[/] {exc}")
        return ExitCode.UNREACHABLE
    summary = merge_summaries([load_summary(report_dir / phase.summary) for phase in planned])
    if summary is not None:
        summary_path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        write_html_report(summary, report_dir / "report.html")
    for phase in planned:
        (report_dir / phase.summary).unlink(missing_ok=True)
    print_summary(console, summary, report_dir)
    code = exit_code_for(_combined(returncodes), console)
    if code is ExitCode.FAILED:
        print_server_trouble(console, server_log)
    return code


def run_phase(phase: Phase, target: Target, config: ValidationConfig, report_dir: Path, extra: tuple[str, ...]) -> int:
    command = pytest_command(phase, config, report_dir, extra)
    # A pytest session of our own, even when the runner itself runs inside one (the platform's tests).
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    env = {**inherited, **handover.encode(target, config, str(report_dir / phase.summary))}
    # Installed pytest plugins (asyncio, hypothesis…) would change the session and warn; none is needed.
    env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    # Inherited stdout/stderr: pytest's own progress appears live, as it would when run by hand.
    return subprocess.call(command, env=env, cwd=PACKAGE_DIR)  # noqa: S603


def _combined(returncodes: list[int]) -> int:
    """One pytest status for several sessions: a failure wins; 'nothing selected' only if every one says so."""
    failing = [code for code in returncodes if code not in (0, 5)]
    if failing:
        return failing[0]
    return 5 if returncodes and all(code == 5 for code in returncodes) else 0


def exit_code_for(returncode: int, console: Console) -> ExitCode:
    """pytest's exit status as the suite's exit code."""
    if returncode == 0:
        return ExitCode.PASSED
    if returncode == 5:  # pytest: nothing selected
        console.print("[yellow]no test matched the selection[/]")
        return ExitCode.PASSED
    if returncode == 4:  # pytest usage error: options the runner passed through were wrong
        return ExitCode.USAGE
    return ExitCode.FAILED

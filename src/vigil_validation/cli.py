"""`vigil validate`: run the validation suites against a managed server or a live deployment.

Exit codes: 0 all passed, 1 failures, 2 bad usage or invalid config, 3 target unreachable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from vigil_validation.runner import RunOptions, Selection, run

app = typer.Typer(
    help="Validate a Vigil deployment end to end (exit 0 passed, 1 failures, 2 bad usage/config, 3 unreachable).",
    no_args_is_help=True,
    add_completion=False,
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="A YAML file merged over the defaults.")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="URL of a live deployment (remote target); default: start one.")
]
ParallelOpt = Annotated[int | None, typer.Option("--parallel", min=1, help="pytest-xdist workers (default 2).")]
ReportOpt = Annotated[Path, typer.Option("--report-dir", help="Where junit.xml, summary.json, server.log go.")]
DatabaseOpt = Annotated[
    str | None,
    typer.Option("--database-url", help="Managed target on a fresh database of this PostgreSQL server."),
]
RedisOpt = Annotated[
    str | None, typer.Option("--redis-url", help="Managed target with this Redis (rate limits, lock-out counters).")
]
ClusterOpt = Annotated[
    bool,
    typer.Option(
        "--cluster",
        help="Start the scaled-out topology (API processes and Celery workers on PostgreSQL, RabbitMQ, Redis, S3; "
        "the `cluster` config section) and validate it.",
    ),
]
KeywordOpt = Annotated[
    str | None, typer.Option("-k", "--keyword", help="Only tests whose names match this pytest -k expression.")
]
ProfileOpt = Annotated[
    str | None,
    typer.Option("--profile", help="The performance suite's load: short (minutes; the default, and CI's) or full."),
]
FaultsOpt = Annotated[
    int | None,
    typer.Option("--faults", min=1, help="disaster_recovery: faults in the consistency checker's seeded schedule."),
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="disaster_recovery: the fault schedule's seed.")]
ExcludeOpt = Annotated[list[str] | None, typer.Option("--exclude-suite", help="Leave this suite out (repeatable).")]
FuzzExamplesOpt = Annotated[
    int | None,
    typer.Option(
        "--fuzz-examples", min=1, help="Schemathesis examples per operation in the contracts suite (default 10)."
    ),
]
BaselineOpt = Annotated[
    Path | None,
    typer.Option(
        "--baseline",
        help="An older OpenAPI document: the contracts suite fails on changes that break it, reports additive ones.",
    ),
]
DEFAULT_REPORTS = Path("validation-reports")


def _run(
    selection: Selection,
    config: Path | None,
    target: str | None,
    parallel: int | None,
    report_dir: Path,
    database_url: str | None,
    redis_url: str | None,
    keyword: str | None,
    profile: str | None = None,
    exclude: list[str] | None = None,
    cluster: bool = False,
    fuzz_examples: int | None = None,
    baseline: Path | None = None,
    faults: int | None = None,
    seed: int | None = None,
) -> None:
    options = RunOptions(
        fuzz_examples=fuzz_examples,
        baseline_spec=str(baseline) if baseline is not None else None,
        dr_faults=faults,
        dr_seed=seed,
        profile=profile,
        exclude_suites=tuple(exclude or ()),
        config_path=config,
        target_url=target,
        parallel=parallel,
        report_dir=report_dir,
        database_url=database_url,
        redis_url=redis_url,
        cluster=cluster,
        extra_pytest_args=("-k", keyword) if keyword else (),
    )
    raise typer.Exit(int(run(selection, options)))


def _fixed_selection(name: str, selection: Selection, summary: str) -> None:
    """Registers `vigil validate NAME`: a fixed selection with the common options."""

    def command(
        config: ConfigOpt = None,
        target: TargetOpt = None,
        parallel: ParallelOpt = None,
        report_dir: ReportOpt = DEFAULT_REPORTS,
        database_url: DatabaseOpt = None,
        redis_url: RedisOpt = None,
        keyword: KeywordOpt = None,
        profile: ProfileOpt = None,
        exclude: ExcludeOpt = None,
        cluster: ClusterOpt = False,
        fuzz_examples: FuzzExamplesOpt = None,
        baseline: BaselineOpt = None,
    ) -> None:
        _run(
            selection,
            config,
            target,
            parallel,
            report_dir,
            database_url,
            redis_url,
            keyword,
            profile,
            exclude,
            cluster,
            fuzz_examples,
            baseline,
        )

    app.command(name, help=summary)(command)


_fixed_selection("all", Selection("all"), "Every suite.")
_fixed_selection(
    "smoke", Selection("smoke", markers="smoke"), "The quick checks (tests marked `smoke`) of every suite."
)
_fixed_selection("security", Selection("security", suites=("security",)), "The security suite.")


@app.command()
def suite(
    name: Annotated[str, typer.Option("--suite", help="A suite folder, e.g. end_to_end, contracts, security.")],
    config: ConfigOpt = None,
    target: TargetOpt = None,
    parallel: ParallelOpt = None,
    report_dir: ReportOpt = DEFAULT_REPORTS,
    database_url: DatabaseOpt = None,
    redis_url: RedisOpt = None,
    keyword: KeywordOpt = None,
    profile: ProfileOpt = None,
    cluster: ClusterOpt = False,
    fuzz_examples: FuzzExamplesOpt = None,
    baseline: BaselineOpt = None,
    faults: FaultsOpt = None,
    seed: SeedOpt = None,
) -> None:
    """One suite by name."""
    selection = Selection(name, suites=(name,))
    _run(
        selection, config, target, parallel, report_dir, database_url, redis_url, keyword, profile, None, cluster,
        fuzz_examples=fuzz_examples, baseline=baseline, faults=faults, seed=seed,
    )  # fmt: skip


def main() -> None:
    app()

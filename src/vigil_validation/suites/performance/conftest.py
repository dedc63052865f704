"""The performance suite's fixtures: the load profile, the provisioned workload (once per session: training and
keys cost seconds), and a runner that loads the target, records the results and returns them."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from vigil.client import VigilClient
from vigil_validation.config import LoadProfile, ValidationConfig
from vigil_validation.load import LoadPlan, LoadResult, Operation, VirtualUser, run_load
from vigil_validation.plugin import Recorder, SeriesRecorder
from vigil_validation.suites.performance.workload import Workload, provision
from vigil_validation.targets import Target
from vigil_validation.testdata import LabelledData

Load = Callable[..., LoadResult]


@pytest.fixture(scope="session")
def profile(validation_config: ValidationConfig) -> LoadProfile:
    return validation_config.load_testing.active


@pytest.fixture(scope="session")
def workload(
    admin: VigilClient,
    validation_config: ValidationConfig,
    labelled_data: LabelledData,
    target: Target,
    profile: LoadProfile,
) -> Iterator[Workload]:
    yield from provision(admin, validation_config, labelled_data, url=target.url, users=profile.virtual_users)


@pytest.fixture
def users(workload: Workload, validation_config: ValidationConfig) -> list[VirtualUser]:
    """The virtual users, with a fresh session for the user among them (an access token lives minutes)."""
    return workload.users(workload.login(validation_config.security.password))


@pytest.fixture
def load(target: Target, validation_config: ValidationConfig, record: Recorder, users: list[VirtualUser]) -> Load:
    """`load(label, rate, duration, operations)`: one open-model load against the target, with the run's bounds
    from `load_testing`; its overall figures are recorded for the reports."""
    settings = validation_config.load_testing

    def run(
        label: str,
        rate_per_s: float,
        duration_s: float,
        operations: Sequence[Operation],
        *,
        virtual_users: Sequence[VirtualUser] | None = None,
        record_figures: bool = True,
    ) -> LoadResult:
        plan = LoadPlan(
            rate_per_s=rate_per_s,
            duration_s=duration_s,
            max_requests=settings.max_requests,
            max_in_flight=settings.max_in_flight,
            request_timeout_s=settings.request_timeout_s,
        )
        result = run_load(
            target.url,
            plan,
            operations,
            virtual_users or users,
            named_explicitly=target.kind == "remote",  # a remote target was named with --target
            label=label,
            progress=settings.progress,
        )
        if record_figures:
            overall = result.overall.summary(duration_s)
            for name in ("p50", "p99", "p99_9", "max"):
                record(f"{label} {name}", overall[name], "ms")
            record(f"{label} throughput", overall["throughput_per_s"], "req/s")
            record(f"{label} error rate", overall["error_rate"], "")
        return result

    return run


def assert_error_rate(result: LoadResult, limit: float) -> None:
    bad = {
        name: (stats.error_rate, stats.errors)
        for name, stats in result.operations.items()
        if stats.count and stats.error_rate > limit
    }
    assert not bad, f"{result.label}: error rate above {limit:.2%}: {bad}"


def percentiles_table(result: LoadResult) -> dict[str, dict[str, Any]]:
    return result.summary()["operations"]  # type: ignore[no-any-return]


__all__ = ["Load", "SeriesRecorder", "assert_error_rate", "percentiles_table"]

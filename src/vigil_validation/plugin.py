"""The suite's pytest plugin: markers, target-aware skips, fixtures (target, admin, tenant_factory, record…),
and the JSON summary. Loaded with `-p vigil_validation.plugin` by the runner."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from vigil.client import VigilAPIError, VigilClient
from vigil.client.retry import NO_RETRY
from vigil_validation import handover, testdata
from vigil_validation.checks import staleness_bound_s
from vigil_validation.collector import SummaryCollector
from vigil_validation.config import ValidationConfig
from vigil_validation.report import FIGURE_PROPERTY, SERIES_PROPERTY
from vigil_validation.spread import RoundRobinTransport
from vigil_validation.targets import Target
from vigil_validation.testdata import LabelledData

SUITES = ("end_to_end", "contracts", "security", "performance", "multi_tenant", "disaster_recovery", "streaming")
MARKERS = {
    "smoke": "a quick check that the deployment basically works (`vigil validate smoke`)",
    "slow": "takes more than a few seconds",
    "destructive": "changes the target beyond its own tenants; skipped on remote targets unless allowed",
    "managed_only": "needs process control of a managed target; skipped on remote targets",
    "alone": "measures the server (latency under load, peak memory): runs by itself, after the parallel tests",
    **{suite: f"in the {suite} suite (set from the folder)" for suite in SUITES},
}
ROLES = ("admin", "analyst", "viewer")


def pytest_configure(config: pytest.Config) -> None:
    for name, help_text in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {help_text}")
    summary = handover.summary_path_from_env()
    # Only the controlling process writes the summary; xdist workers forward their reports to it.
    if summary and not hasattr(config, "workerinput"):
        target = handover.target_from_env()
        config.pluginmanager.register(SummaryCollector(Path(summary), asdict(target)), "vigil-summary")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    target = handover.target_from_env()
    settings = handover.config_from_env()
    for item in items:
        parts = Path(str(item.path)).parts
        if "suites" in parts and parts.index("suites") + 1 < len(parts):
            suite = parts[parts.index("suites") + 1]
            if suite in SUITES:
                item.add_marker(getattr(pytest.mark, suite))
        if target.kind == "remote" and item.get_closest_marker("managed_only"):
            item.add_marker(pytest.mark.skip(reason="needs a managed target (process control); this one is remote"))
        if (
            target.kind == "remote"
            and item.get_closest_marker("destructive")
            and not settings.environment.allow_destructive_on_remote
        ):
            item.add_marker(
                pytest.mark.skip(reason="destructive on a remote target; set environment.allow_destructive_on_remote")
            )


# -- fixtures ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def validation_config() -> ValidationConfig:
    """The run's configuration (defaults merged with --config and command-line options)."""
    return handover.config_from_env()


@pytest.fixture(scope="session")
def target() -> Target:
    """Where the server under validation is (`url`), and whether it is `managed` or `remote` (`kind`)."""
    return handover.target_from_env()


@pytest.fixture(scope="session")
def staleness_bound(target: Target) -> float:
    """Seconds a change may take to hold on every API process of the target (`checks.staleness_bound_s`)."""
    return staleness_bound_s(target.url)


@pytest.fixture(scope="session")
def client_factory(target: Target, validation_config: ValidationConfig) -> Iterator[Callable[[], VigilClient]]:
    """New unauthenticated SDK clients of the target; closed at the end of the session."""
    made: list[VigilClient] = []

    # A cluster's clients spread their requests over every API process, one request each in turn.
    transport = RoundRobinTransport(target.api_urls) if len(target.api_urls) > 1 else None

    def make() -> VigilClient:
        # No retries: the suites judge each answer as the server gave it (a 429 or a refused connection included).
        client = VigilClient(
            target.url, timeout=validation_config.api.request_timeout_s, transport=transport, retry=NO_RETRY
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()
    if transport is not None:  # its sockets, else a ResourceWarning at exit (an error under `filterwarnings`)
        transport.shutdown()


@pytest.fixture(scope="session")
def admin(target: Target, client_factory: Callable[[], VigilClient]) -> VigilClient:
    """The platform superadmin, logged in (once per worker)."""
    client = client_factory()
    client.login(target.admin_email, target.admin_password)
    return client


@pytest.fixture
def anonymous(client_factory: Callable[[], VigilClient]) -> VigilClient:
    """A client without credentials."""
    return client_factory()


@dataclass
class ProvisionedTenant:
    """A fresh tenant with one logged-in user per role (their password is the config's `security.password`)."""

    id: str
    name: str
    admin: VigilClient
    analyst: VigilClient
    viewer: VigilClient
    emails: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def tenant_factory(
    admin: VigilClient, validation_config: ValidationConfig, client_factory: Callable[[], VigilClient]
) -> Iterator[Callable[[], ProvisionedTenant]]:
    """Provisions tenants through the API as an operator would, and deletes them (and all their data) after."""
    created: list[str] = []
    password = validation_config.security.password

    def make() -> ProvisionedTenant:
        suffix = uuid.uuid4().hex[:10]
        tenant = admin.create_tenant(f"validation-{suffix}")
        created.append(tenant["id"])
        clients: dict[str, VigilClient] = {}
        emails: dict[str, str] = {}
        for role in ROLES:
            email = f"{role}-{suffix}@validation.example.com"
            admin.create_user(email, password, role=role, tenant_id=tenant["id"])
            client = client_factory()
            client.login(email, password)
            clients[role], emails[role] = client, email
        return ProvisionedTenant(id=tenant["id"], name=tenant["name"], emails=emails, **clients)

    yield make
    for tenant_id in created:
        try:
            admin.delete_tenant(tenant_id)
        except VigilAPIError as exc:
            if exc.status != 404:  # already gone is fine: a test may delete its own tenant
                raise


@pytest.fixture
def tenant(tenant_factory: Callable[[], ProvisionedTenant]) -> ProvisionedTenant:
    """One fresh tenant for the test."""
    return tenant_factory()


Recorder = Callable[..., None]


@pytest.fixture
def record(request: pytest.FixtureRequest) -> Recorder:
    """`record(name, value, unit)`: attaches a measured figure (ROC-AUC, latency…) to the test in the reports."""

    def add(name: str, value: float, unit: str = "") -> None:
        figure = {"name": name, "value": float(value), "unit": unit}
        request.node.user_properties.append((FIGURE_PROPERTY, figure))

    return add


SeriesRecorder = Callable[..., None]


@pytest.fixture
def record_series(request: pytest.FixtureRequest) -> SeriesRecorder:
    """`record_series(name, kind, data, unit="")`: attaches structured data to the test — kept in `summary.json`
    under the test's `series` and drawn by the HTML report when it knows the `kind` (`latency_steps`,
    `throughput`, `memory`, `knee`, `timeline`; see `vigil_validation.html_report`). `data` must be JSON-ready."""

    def add(name: str, kind: str, data: dict[str, Any], unit: str = "") -> None:
        json.dumps(data, allow_nan=False)  # refused here, where the test can be fixed, not in the report
        request.node.user_properties.append((SERIES_PROPERTY, {"name": name, "kind": kind, "unit": unit, "data": data}))

    return add


@pytest.fixture(scope="session")
def labelled_data(validation_config: ValidationConfig) -> LabelledData:
    """The configured real dataset with its known answer (breastw: `malignant`)."""
    return testdata.load(validation_config.test_data)

"""The SDK as a data scientist uses it, against a real server: pandas, polars and pyarrow in and out, the
scikit-learn-style `Detector`, waiting for jobs with progress, reports, downloads and API keys — and retries that
ride out a refused connection and a rate limit."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from tests.client.conftest import SdkTenant
from tests.client.live_server import free_port, live_server
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from vigil.client import NO_RETRY, Detector, RetryPolicy, VigilAPIError, VigilClient

COLUMNS = ["a", "b", "c"]


def planted(rows: int = 300, seed: int = 7) -> pl.DataFrame:
    """Normal rows around 0 and, at the last five, rows far out: the anomalies are known in advance."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1, size=(rows, len(COLUMNS)))
    values[-5:] = 9.0
    return pl.DataFrame(values, schema=COLUMNS)


def as_kind(frame: pl.DataFrame, kind: str) -> Any:
    return {"polars": frame, "pandas": frame.to_pandas(), "arrow": frame.to_arrow()}[kind]


def as_polars(data: Any) -> pl.DataFrame:
    if isinstance(data, pd.DataFrame):
        return pl.from_pandas(data)
    if isinstance(data, pa.Table):
        return pl.DataFrame(pl.from_arrow(data))
    assert isinstance(data, pl.DataFrame)
    return data


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_tables_round_trip_in_the_callers_library(sdk_tenant: SdkTenant, kind: str) -> None:
    frame = planted(50)
    sent = as_kind(frame, kind)
    dataset = sdk_tenant.analyst.datasets.upload(sent, name=f"rt-{kind}")
    assert (dataset["rows"], dataset["columns"]) == (50, 3)
    back = sdk_tenant.viewer.datasets.to_frame(dataset["id"], kind=kind)  # type: ignore[arg-type]
    assert type(back) is type(sent)
    assert as_polars(back).equals(frame)


@pytest.mark.parametrize("kind", ["pandas", "polars", "arrow"])
def test_scikit_learn_style_detector_finds_the_planted_rows(sdk_tenant: SdkTenant, kind: str) -> None:
    frame = planted()
    data = as_kind(frame, kind)
    states: list[dict[str, Any]] = []
    detector = Detector(sdk_tenant.analyst, "iforest", contamination=0.02, parameters={"random_state": 0})
    detector.progress = False
    # `fit` waits on the job; following its states shows they end succeeded.
    original_wait = sdk_tenant.analyst.jobs.wait

    def following(job_id: str, **kwargs: Any) -> dict[str, Any]:
        kwargs["progress"] = states.append
        return original_wait(job_id, **kwargs)

    sdk_tenant.analyst.jobs.wait = following  # type: ignore[method-assign]
    try:
        detector.fit(data)
    finally:
        sdk_tenant.analyst.jobs.wait = original_wait  # type: ignore[method-assign]
    assert states[-1]["status"] == "succeeded"
    assert detector.version_ == 1
    assert detector.threshold_ is not None
    scores = detector.decision_function(data)
    flags = detector.predict(data)
    assert scores.shape == flags.shape == (300,)
    assert set(np.argsort(scores)[-5:]) == {295, 296, 297, 298, 299}
    assert flags[-5:].tolist() == [1] * 5
    assert ((scores > detector.threshold_) == flags.astype(bool)).all()
    scored = detector.score_frame(data)
    assert type(scored) is type(data)
    names = list(scored.columns) if kind != "arrow" else scored.column_names
    assert names == [*COLUMNS, "score", "is_anomaly", "percentile", "imputed"]


def test_waiting_with_a_progress_bar_and_reports_and_downloads(sdk_tenant: SdkTenant, tmp_path: Path) -> None:
    vigil = sdk_tenant.analyst
    dataset = vigil.datasets.upload(planted(100).to_pandas(), name="reports")
    profile = vigil.datasets.report(dataset["id"], "profile")
    assert profile["kind"] == "profile"
    page = vigil.datasets.report_html(dataset["id"], "profile", to=tmp_path / "profile.html")
    assert page.startswith("<!DOCTYPE html>") or "<html" in page[:200]
    csv = vigil.datasets.download(dataset["id"], format="csv", to=tmp_path / "d.csv")
    assert csv.decode().splitlines()[0].replace('"', "") == "a,b,c"
    assert (tmp_path / "d.csv").read_bytes() == csv
    detector = vigil.detectors.create(name="bar", algorithm="hbos", contamination=0.05)
    job = vigil.detectors.train(detector["id"], dataset["id"])
    assert vigil.jobs.wait(job["id"], progress=True)["status"] == "succeeded"


def test_api_keys_from_the_sdk(root: VigilClient, server_url: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    tenant = root.create_tenant(f"keys-{suffix}")
    try:
        root.create_user(
            f"admin-{suffix}@example.com", "a long enough admin passphrase", role="admin", tenant_id=tenant["id"]
        )
        with VigilClient(server_url) as admin:
            admin.login(f"admin-{suffix}@example.com", "a long enough admin passphrase")
            created = admin.api_keys.create("reader", ["read-only"])
            assert [k["id"] for k in admin.api_keys.iter_all()] == [created["id"]]
            with VigilClient(server_url, api_key=created["key"]) as machine:
                assert machine.datasets.list()["items"] == []
                admin.api_keys.revoke(created["id"])
                with pytest.raises(VigilAPIError) as refused:
                    machine.datasets.list()
                assert refused.value.status == 401
    finally:
        root.delete_tenant(tenant["id"])


# -- retries --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that allows three API requests a second per address."""
    with live_server(tmp_path_factory.mktemp("limited"), rate_limit_per_ip="3/second") as url:
        yield url


def test_a_rate_limit_is_waited_out_not_thrown(limited_url: str) -> None:
    with VigilClient(limited_url, retry=NO_RETRY) as impatient:
        impatient.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        statuses = [impatient.send("GET", "/api/v1/algorithms").status_code for _ in range(6)]
        assert 429 in statuses  # the limit is real
    time.sleep(1.1)
    with VigilClient(limited_url) as patient:
        patient.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        for _ in range(6):
            assert patient.algorithms()


def test_a_server_that_is_still_starting_is_waited_for(tmp_path: Path) -> None:
    port = free_port()
    started = threading.Event()

    def start_late() -> None:
        time.sleep(1.0)
        with live_server(tmp_path / "late", port=port):
            started.set()
            time.sleep(20)

    threading.Thread(target=start_late, daemon=True).start()
    with VigilClient(f"http://127.0.0.1:{port}", retry=RetryPolicy(attempts=30, backoff_s=0.2, max_backoff_s=1.0)) as c:
        assert c.health()["status"] == "ok"
    assert started.is_set()

"""The orphan-blob sweep: blobs that a crash between a blob's write and its row's left behind (put and never
recorded here, as the crash would leave them: hitting a SIGKILL in that gap of a real server is left to chance)
are deleted once older than the grace; young ones, referenced ones and unknown kinds stay, a row recorded while
the sweep runs keeps its blob, and a dry run deletes nothing."""

from __future__ import annotations

import os
import time
from collections.abc import Collection
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import Tenant, make_settings, provision_tenant
from tests.detectors.test_workflow import breastw, trained_detector, upload
from tests.test_cli import _env
from vigil.app import blob_families, create_app
from vigil.cli import app as cli
from vigil.config import Settings
from vigil.core import blob_sweep
from vigil.core.blob_sweep import BlobFamily, SweepReport, sweep_orphan_blobs
from vigil.core.context import AppContext
from vigil.core.database import TenantScope, utcnow
from vigil.core.ids import new_id
from vigil.datasets.service import DatasetService, dataset_blob_refs
from vigil.jobs.models import Job
from vigil.jobs.repository import JobRepository

HOUR = 3600.0


def context_of(client: TestClient) -> AppContext:
    context: AppContext = client.app.state.context  # type: ignore[attr-defined]
    return context


def age(context: AppContext, key: str, seconds: float = 2 * HOUR) -> None:
    """Makes a local blob look written `seconds` ago."""
    then = time.time() - seconds
    os.utime(context.blobs.path(key), (then, then))


def put_unrecorded_table(context: AppContext, scope: TenantScope) -> str:
    """What a process killed between `put_table` and `record_table` leaves: the file, no row."""
    with context.database.session() as session:
        stored = DatasetService(session=session, scope=scope, app=context).put_table(pa.table({"x": [1.0, 2.0]}))
    return stored.key


def sweep(context: AppContext, **options: object) -> SweepReport:
    values: dict[str, object] = {
        "database": context.database,
        "blobs": context.blobs,
        "families": blob_families().families,
        "grace_s": HOUR,
        "metrics": context.metrics,
        **options,
    }
    return sweep_orphan_blobs(**values)  # type: ignore[arg-type]


def stored_keys(context: AppContext, tenant_id: str) -> set[str]:
    return {blob.key for blob in context.blobs.walk(f"tenants/{tenant_id}")}


def test_old_orphans_go_young_referenced_and_unknown_blobs_stay(
    client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blob_sweep, "PAGE", 2)  # several pages per directory
    context = context_of(client)
    scope = TenantScope(tenant.id)
    blobs = context.blobs
    frame, _ = breastw()
    dataset_id = upload(client, tenant.analyst, frame)
    detector_id = trained_detector(client, tenant, dataset_id)
    referenced = stored_keys(context, tenant.id)
    assert len(referenced) == 2  # the upload and the model artifact

    orphans = {
        put_unrecorded_table(context, scope),
        put_unrecorded_table(context, scope),
        put_unrecorded_table(context, scope),
        blobs.key(scope, "models", detector_id, f"{new_id('job')}.vmdl"),  # a training killed before its version
        blobs.key(scope, "jobs", new_id("job"), "a1", "part-00000.json"),  # scratch its job's end did not remove
        blobs.key(scope, "staging", "up-left-by-a-crash"),
    }
    young = put_unrecorded_table(context, scope)
    unknown = blobs.key(scope, "elsewhere", "someone-elses.bin")
    for key in orphans | {unknown}:
        if not blobs.exists(key):
            blobs.put_bytes(key, b"left behind")
    for key in orphans | referenced | {unknown}:
        age(context, key)

    dry = sweep(context, dry_run=True)
    assert (dry.orphans, dry.kept_young) == (len(orphans), 1)
    assert stored_keys(context, tenant.id) == orphans | referenced | {young, unknown}, "a dry run deletes nothing"

    seen: list[str] = []
    report = sweep(context, on_orphan=lambda blob: seen.append(blob.key))
    assert set(seen) == orphans
    assert report.orphans == len(orphans)
    assert report.orphan_bytes > 0
    assert report.unknown == [f"tenants/{tenant.id}/elsewhere"]
    assert stored_keys(context, tenant.id) == referenced | {young, unknown}
    # What is referenced still works.
    rows = client.get(f"/api/v1/datasets/{dataset_id}/rows?limit=3", headers=tenant.viewer)
    assert rows.status_code == 200, rows.text
    detected = client.post(
        f"/api/v1/detectors/{detector_id}/detect", json={"records": frame.head(3).to_dicts()}, headers=tenant.analyst
    )
    assert detected.status_code == 200, detected.text
    metrics = client.get("/metrics").text
    assert f"vigil_orphan_blobs_deleted_total {float(len(orphans))}" in metrics
    assert sweep(context).orphans == 0


def test_a_running_jobs_scratch_and_artifact_stay_until_it_ends(client: TestClient, tenant: Tenant) -> None:
    """A partitioned job's parts and a training's artifact (named after its job: a retry writes the same key
    again) have no row of their own while the job runs: its row keeps them."""
    context = context_of(client)
    scope = TenantScope(tenant.id)
    job_id = new_id("job")
    with context.database.session() as session:
        # Running in no executor's hands (none will claim it): as far as blobs go, a job that runs for hours.
        JobRepository(session=session, scope=scope).add(
            Job(id=job_id, tenant_id=tenant.id, kind="detector.detect", status="running", started_at=utcnow())
        )
    scratch = context.blobs.key(scope, "jobs", job_id, "a2", "part-00003.parquet")
    artifact = context.blobs.key(scope, "models", new_id("det"), f"{job_id}.vmdl")
    for key in (scratch, artifact):
        context.blobs.put_bytes(key, b"in use")
        age(context, key)
    assert sweep(context).orphans == 0
    assert stored_keys(context, tenant.id) == {scratch, artifact}

    with context.database.session() as session:
        job = JobRepository(session=session, scope=scope).get(job_id)
        assert job is not None
        job.status = "succeeded"
    assert sweep(context).orphans == 2
    assert stored_keys(context, tenant.id) == set()


def test_a_row_recorded_while_the_sweep_runs_keeps_its_blob(client: TestClient, tenant: Tenant) -> None:
    """The writer records its row after the sweep has listed and judged the blob (a put -> record gap longer than
    the grace, which the grace is there to make impossible): asked again right before the delete, the row wins."""
    context = context_of(client)
    scope = TenantScope(tenant.id)
    with context.database.session() as session:
        stored = DatasetService(session=session, scope=scope, app=context).put_table(pa.table({"x": [1.0, 2.0]}))
    age(context, stored.key)
    recorded: list[str] = []

    def racing(session: Session, scope: TenantScope, keys: list[str]) -> Collection[str]:
        found = dataset_blob_refs(session, scope, keys)
        if not recorded:  # the first look: then the writer commits its row
            with context.database.session() as writer:
                made = DatasetService(session=writer, scope=scope, app=context).record_table(
                    stored, name="late", description=None, source_format="parquet", created_by=None
                )
            recorded.append(made.id)
        return found

    report = sweep(context, families=[BlobFamily("datasets", racing)])
    assert recorded
    assert report.orphans == 0
    assert context.blobs.exists(stored.key)
    rows = client.get(f"/api/v1/datasets/{recorded[0]}/rows", headers=tenant.viewer)
    assert rows.status_code == 200, rows.text
    assert rows.json()["total"] == 2


def test_a_deleted_tenants_blobs_all_go(client: TestClient, tenant: Tenant) -> None:
    """A tenant deleted while its store was unreachable left its whole prefix: no row refers to any of it."""
    context = context_of(client)
    gone = TenantScope(new_id("ten"))
    key = context.blobs.key(gone, "datasets", f"{new_id('ds')}.parquet")
    context.blobs.put_bytes(key, b"of nobody")
    age(context, key)
    report = sweep(context, tenant=gone.tenant_id)
    assert report.orphans == 1
    assert not context.blobs.exists(key)


def test_the_admin_command_lists_then_deletes(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    context = context_of(client)
    scope = TenantScope(tenant.id)
    frame, _ = breastw()
    kept = upload(client, tenant.analyst, frame)
    orphan = put_unrecorded_table(context, scope)
    env = {**_env(settings), "VIGIL_LOG_LEVEL": "WARNING"}

    young = CliRunner().invoke(cli, ["admin", "sweep-blobs"], env=env)
    assert young.exit_code == 0, young.output
    assert "deleted 0 orphan(s)" in young.output
    assert "1 unreferenced kept within the grace" in young.output

    dry = CliRunner().invoke(cli, ["admin", "sweep-blobs", "--dry-run", "--grace-s", "0"], env=env)
    assert dry.exit_code == 0, dry.output
    size = context.blobs.size(orphan)
    assert f"would delete {orphan} ({size} bytes)" in dry.output
    assert f"would delete 1 orphan(s), {size} bytes" in dry.output
    assert context.blobs.exists(orphan)

    done = CliRunner().invoke(cli, ["admin", "sweep-blobs", "--grace-s", "0"], env=env)
    assert done.exit_code == 0, done.output
    assert f"deleted {orphan} ({size} bytes)" in done.output
    assert "deleted 1 orphan(s)" in done.output
    assert not context.blobs.exists(orphan)
    assert client.get(f"/api/v1/datasets/{kept}/rows?limit=1", headers=tenant.viewer).status_code == 200

    verified = CliRunner().invoke(cli, ["admin", "sweep-blobs", "--verify", "--quiet"], env=env)
    assert verified.exit_code == 0, verified.output
    assert "0 blob(s) missing" in verified.output
    lost = context.blobs.key(scope, "datasets", f"{kept}.parquet")
    context.blobs.delete(lost)  # a row whose bytes are gone: what the sweep must never make
    broken = CliRunner().invoke(cli, ["admin", "sweep-blobs", "--verify", "--quiet"], env=env)
    assert broken.exit_code == 1, broken.output
    assert f"missing: {lost}" in broken.output


def test_the_keeper_sweeps_with_the_configured_grace(tmp_path: Path) -> None:
    """Wired as a chore of the keeper: it runs from start-up on (in a thread), with `blob_orphan_grace_s`."""
    settings = make_settings(tmp_path, blob_orphan_grace_s=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as first:
        tenant = provision_tenant(first)
        context = context_of(first)
        orphan = put_unrecorded_table(context, TenantScope(tenant.id))
    with TestClient(create_app(settings), raise_server_exceptions=False) as second:
        blobs = context_of(second).blobs
        deadline = time.monotonic() + 60  # a thread of its own, started with the server
        while blobs.exists(orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not blobs.exists(orphan)

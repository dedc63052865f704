"""Applying batches (`streams/ingest.py`): consecutive batches of one client share one transaction — one commit —
and each keeps its own answer, exactly as if sent one at a time."""

from __future__ import annotations

import gc
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login
from tests.streams.conftest import create_stream, make_events, send
from vigil.core.database import TenantScope
from vigil.core.errors import InvalidInput, RateLimited
from vigil.streams import state
from vigil.streams.service import StreamService


def test_consecutive_batches_share_one_commit_and_keep_their_own_answers(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    twin = create_stream(client, tenant.analyst, name="twin")
    events = make_events(150, anomalies=(120,))
    bad = make_events(10, start=51)
    bad[3]["values"]["f0"] = "x"
    # A good batch, a refused one, a good one, and one that repeats 41..100 (duplicates) and adds 101..150.
    batches = [events[:50], bad, events[50:100], events[40:150]]
    context, commits = client.app.state.context, []  # type: ignore[attr-defined]
    with context.database.sessions() as session:
        event.listen(session, "after_commit", lambda _: commits.append(1))
        answers: list[Any] = StreamService(
            session=session,
            scope=TenantScope(tenant.id),
            app=context,
            runtime=client.app.state.streams,  # type: ignore[attr-defined]
            limiter=None,
        ).ingest_many(stream_id=stream["id"], batches=batches)
    assert len(commits) == 1
    assert isinstance(answers[1], InvalidInput)
    assert answers[1].extra["errors"][0]["seq"] == 54
    one_at_a_time = [send(client, twin["id"], b, tenant.analyst) for b in (events[:50], events[50:100], events[40:150])]
    assert [answers[0].as_dict(), answers[2].as_dict(), answers[3].as_dict()] == one_at_a_time
    assert [r["status"] for r in answers[3].results] == ["duplicate"] * 60 + ["new"] * 50
    stored = client.get(f"/api/v1/streams/{stream['id']}", headers=tenant.viewer).json()
    assert (stored["events_seen"], stored["last_seq"]) == (150, 150)


def test_after_a_rate_limited_batch_nothing_more_is_applied(client: TestClient, tenant: Tenant) -> None:
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    limits = {"quotas": {"stream_events_per_second": 120}}
    assert client.patch(f"/api/v1/tenants/{tenant.id}", json=limits, headers=root).status_code == 200
    stream = create_stream(client, tenant.analyst)
    events = make_events(400)
    context = client.app.state.context  # type: ignore[attr-defined]
    with context.database.sessions() as session:
        answers: list[Any] = StreamService(
            session=session,
            scope=TenantScope(tenant.id),
            app=context,
            runtime=client.app.state.streams,  # type: ignore[attr-defined]
            limiter=client.app.state.identity.limiter,  # type: ignore[attr-defined]
        ).ingest_many(stream_id=stream["id"], batches=[events[i : i + 100] for i in range(0, 400, 100)])
    # The second batch is over the limit (the third, if the one-second window turned in between): it is the last
    # answer, the ones before it are applied, none after it.
    assert isinstance(answers[-1], RateLimited)
    assert 2 <= len(answers) < 4
    assert all(not isinstance(a, RateLimited) for a in answers[:-1])
    stored = client.get(f"/api/v1/streams/{stream['id']}", headers=tenant.viewer).json()
    assert (stored["events_seen"], stored["last_seq"]) == (100 * (len(answers) - 1), 100 * (len(answers) - 1))


def test_after_a_snapshot_the_hot_model_reads_its_attributes_inline(
    client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dumping a snapshot leaves the live model's objects reading their attributes through a dict, ~1.5x slower
    (`OnlineModel.compacted`): the snapshot is loaded again in the background, and the next batch swaps that copy
    in before it scores anything."""
    context = client.app.state.context  # type: ignore[attr-defined]
    monkeypatch.setattr(context.settings, "stream_snapshot_every_events", 100)
    stream = create_stream(client, tenant.analyst)
    runtime = client.app.state.streams  # type: ignore[attr-defined]
    send(client, stream["id"], make_events(100), tenant.analyst)
    hot = runtime.take(stream["id"])
    runtime.keep(stream["id"], hot)
    assert hot.head.snapshot_version == hot.version  # this batch took a snapshot
    assert hot.compacting is not None  # its compacted copy is on its way, off the request path
    send(client, stream["id"], make_events(50, start=101), tenant.analyst)
    hot = runtime.take(stream["id"])
    runtime.keep(stream["id"], hot)
    assert (hot.compacting, hot.head.snapshot_version, hot.version) == (None, 1, 2)  # no new snapshot yet
    quantile = hot.model.quantile  # read event by event
    assert not any(type(ref) is dict for ref in gc.get_referents(quantile))  # asked without making its __dict__


def test_a_stream_whose_model_is_swapped_after_snapshots_scores_as_one_never_snapshot(
    client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The compacted copy is the model at the snapshot's version, swapped in before anything else is learnt: the
    scores go on exactly as if no snapshot had been taken."""
    settings = client.app.state.context.settings  # type: ignore[attr-defined]
    events = make_events(600, anomalies=(333, 480))
    monkeypatch.setattr(settings, "stream_snapshot_every_events", 10**9)
    monkeypatch.setattr(settings, "stream_snapshot_every_s", 10**6)
    never = create_stream(client, tenant.analyst, name="never")
    twin = [send(client, never["id"], events[i : i + 50], tenant.analyst) for i in range(0, 600, 50)]
    monkeypatch.setattr(settings, "stream_snapshot_every_events", 100)
    often = create_stream(client, tenant.analyst, name="often")
    answers = [send(client, often["id"], events[i : i + 50], tenant.analyst) for i in range(0, 600, 50)]
    stored = client.get(f"/api/v1/streams/{often['id']}", headers=tenant.viewer).json()
    assert stored["last_snapshot"]["events_seen"] == 600  # a snapshot every other batch, the last one included
    assert [r["score"] for a in answers for r in a["results"]] == [r["score"] for a in twin for r in a["results"]]
    assert [r["is_anomaly"] for a in answers for r in a["results"]] == [
        r["is_anomaly"] for a in twin for r in a["results"]
    ]


def test_a_compaction_that_fails_leaves_the_live_model_going_on(
    client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The compacted copy is only faster, never needed: if loading it fails, the next batch goes on with the live
    model (reading through dicts, as slow as before compaction existed) and scores exactly the same."""
    settings = client.app.state.context.settings  # type: ignore[attr-defined]
    events = make_events(300)
    twin = create_stream(client, tenant.analyst, name="twin")
    expected = [send(client, twin["id"], events[i : i + 100], tenant.analyst) for i in range(0, 300, 100)]
    monkeypatch.setattr(settings, "stream_snapshot_every_events", 100)

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("no memory left for the copy")

    monkeypatch.setattr(state.ml, "load_state", broken)
    stream = create_stream(client, tenant.analyst)
    answers = [send(client, stream["id"], events[i : i + 100], tenant.analyst) for i in range(0, 300, 100)]
    assert [a["results"] for a in answers] == [e["results"] for e in expected]
    assert "compacting the model after its snapshot failed" in caplog.text

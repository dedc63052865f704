"""Stream routes over HTTP: the lifecycle, exactly-once scoring in seq order, bad input that changes nothing,
limits and quotas, flagged events, drift, metrics, batch models on a stream, and other tenants kept out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, Tenant, bearer, login, make_settings, wait_for_job
from tests.streams.conftest import FEATURES, create_stream, make_events, send
from tests.support.write_lock import write_lock_is_free
from vigil import ml
from vigil.app import create_app
from vigil.config import Settings


def stream_of(client: TestClient, stream_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = client.get(f"/api/v1/streams/{stream_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_lifecycle(client: TestClient, tenant: Tenant) -> None:
    created = create_stream(client, tenant.analyst, description="line 3")
    assert created["algorithm"] == "hst"
    assert created["features"] == FEATURES
    assert created["parameters"]["seed"] == 11
    assert created["last_seq"] is None
    assert created["last_snapshot"]["state_version"] == 0  # recovery always starts from a snapshot
    listed = client.get("/api/v1/streams", headers=tenant.viewer).json()
    assert [s["id"] for s in listed["items"]] == [created["id"]]
    renamed = client.patch(f"/api/v1/streams/{created['id']}", json={"name": "line 4"}, headers=tenant.analyst)
    assert renamed.status_code == 200
    assert renamed.json()["name"] == "line 4"
    assert (
        client.patch(f"/api/v1/streams/{created['id']}", json={"features": ["x"]}, headers=tenant.analyst).status_code
        == 422
    )
    assert client.delete(f"/api/v1/streams/{created['id']}", headers=tenant.viewer).status_code == 403
    assert client.delete(f"/api/v1/streams/{created['id']}", headers=tenant.analyst).status_code == 204
    for path in ("", "/anomalies", "/metrics", "/drifts"):
        gone = client.get(f"/api/v1/streams/{created['id']}{path}", headers=tenant.analyst)
        assert gone.status_code == 404
        assert gone.headers["content-type"] == "application/problem+json"
    assert (
        client.post(
            f"/api/v1/streams/{created['id']}/events", json={"events": make_events(1)}, headers=tenant.analyst
        ).status_code
        == 404
    )


def test_each_event_is_learnt_once_in_seq_order(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    twin = create_stream(client, tenant.analyst, name="twin")
    events = make_events(300, anomalies=(150, 220))
    expected = [r["score"] for r in send(client, twin["id"], events, tenant.analyst)["results"]]

    first = send(client, stream["id"], events[:120], tenant.analyst)
    assert first["last_seq"] == 120
    assert first["accepted"] == 120
    # A resend overlapping what was acknowledged: the old events are answered as before, never learnt again.
    again = send(client, stream["id"], events[60:200], tenant.analyst)
    assert again["accepted"] == 80
    assert again["duplicates"] == 60
    assert {r["status"] for r in again["results"][:60]} == {"duplicate"}
    assert [r["score"] for r in again["results"][:60]] == [r["score"] for r in first["results"][60:120]]
    rest = send(client, stream["id"], events[200:], tenant.analyst)
    scores = [r["score"] for r in first["results"] + again["results"][60:] + rest["results"]]
    assert scores == expected  # the same as one uninterrupted pass
    assert stream_of(client, stream["id"], tenant.viewer)["events_seen"] == 300

    # Gaps are fine; an event at or below last_seq that never came is late: answered, not learnt.
    gap = send(client, stream["id"], make_events(1, start=400), tenant.analyst)
    assert gap["last_seq"] == 400
    late = send(client, stream["id"], make_events(1, start=350), tenant.analyst)
    assert late["results"] == [{"seq": 350, "score": None, "is_anomaly": None, "status": "late"}]
    assert stream_of(client, stream["id"], tenant.viewer)["events_seen"] == 301
    prometheus = client.get("/metrics").text
    assert 'vigil_stream_events_total{status="new"} 601.0' in prometheus  # the twin's 300 and these 301
    assert 'vigil_stream_events_total{status="duplicate"} 60.0' in prometheus
    assert 'vigil_stream_events_total{status="late"} 1.0' in prometheus


def _raw(client: TestClient, stream_id: str, body: str, headers: dict[str, str]) -> Any:
    return client.post(
        f"/api/v1/streams/{stream_id}/events",
        content=body.encode(),
        headers={**headers, "Content-Type": "application/json"},
    )


BAD_EVENTS = [
    (lambda e: e["values"].pop("f2"), "f2", "missing"),
    (lambda e: e["values"].update(f1="7"), "f1", "float_type"),
    (lambda e: e["values"].update(f1=True), "f1", "float_type"),
    (lambda e: e["values"].update(f3=None), "f3", "float_type"),
    (lambda e: e["values"].update(bogus=1.0), "bogus", "extra"),
    (lambda e: e["values"].update(f0="NaN-marker"), "f0", "finite_number"),
    (lambda e: e["values"].update(f0="Inf-marker"), "f0", "finite_number"),
]


def test_a_bad_event_refuses_the_whole_batch(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    twin = create_stream(client, tenant.analyst, name="twin")
    for mutate, field, kind in BAD_EVENTS:
        events = make_events(80)
        mutate(events[70])
        body = json.dumps({"events": events}).replace('"NaN-marker"', "NaN").replace('"Inf-marker"', "1e999")
        refused = _raw(client, stream["id"], body, tenant.analyst)
        assert refused.status_code == 422, refused.text
        problem = refused.json()
        assert problem["type"] == "/problems/invalid-input"
        assert "seq 71" in problem["detail"], problem["detail"]
        assert repr(field) in problem["detail"], problem["detail"]
        assert (problem["errors"][0]["seq"], problem["errors"][0]["field"], problem["errors"][0]["type"]) == (
            71,
            field,
            kind,
        )
    assert stream_of(client, stream["id"], tenant.viewer)["events_seen"] == 0
    # Nothing of them was learnt: a good batch now scores exactly as on a fresh twin.
    good = make_events(80)
    assert send(client, stream["id"], good, tenant.analyst) == send(client, twin["id"], good, tenant.analyst)


def test_a_body_that_is_not_a_json_batch_is_422(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    url = f"/api/v1/streams/{stream['id']}/events"
    good = json.dumps({"events": make_events(2)})
    cases = [
        ('{"events": [', "application/json", ["body"], "json_invalid"),
        ("", "application/json", ["body"], "json_invalid"),
        ("[1, 2]", "application/json", ["body"], "model_type"),
        ('{"events": [], "more": 1}', "application/json", ["body", "events"], "too_short"),
        (good, "text/plain", ["body"], "json_type"),  # JSON in disguise is not read as JSON
    ]
    for body, media, loc, kind in cases:
        refused = client.post(url, content=body.encode(), headers={**tenant.analyst, "Content-Type": media})
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert (refused.json()["errors"][0]["loc"], refused.json()["errors"][0]["type"]) == (loc, kind), body
    assert stream_of(client, stream["id"], tenant.viewer)["events_seen"] == 0
    charset = {**tenant.analyst, "Content-Type": "application/json; charset=utf-8"}
    assert client.post(url, content=good.encode(), headers=charset).json()["accepted"] == 2


def _event(seq: int, **values: Any) -> dict[str, Any]:
    return {"seq": seq, "values": {**{f: float(seq + i) for i, f in enumerate(FEATURES)}, **values}}


def _reversed(values: dict[str, Any]) -> dict[str, Any]:
    return dict(reversed(values.items()))


# Bodies the fast reader (orjson, `plain_events`) takes or leaves to the full parser (`EventsRequest`), as text.
READER_CASES = {
    "plain": json.dumps({"events": [_event(1), _event(2)]}),
    "another order, an integer": json.dumps({"events": [{"seq": 1, "values": _reversed(_event(1, f0=3)["values"])}]}),
    "a string": json.dumps({"events": [_event(1), _event(2, f1="3")]}),
    "a bool": json.dumps({"events": [_event(1, f2=True)]}),
    "null": json.dumps({"events": [_event(1, f2=None)]}),
    "NaN": json.dumps({"events": [_event(1, f1="nan")]}).replace('"nan"', "NaN"),
    "Infinity": json.dumps({"events": [_event(1, f1="inf")]}).replace('"inf"', "Infinity"),
    "1e999": json.dumps({"events": [_event(1, f1="inf")]}).replace('"inf"', "1e999"),
    "a huge integer": json.dumps({"events": [_event(1, f1=10**400)]}),
    "a feature missing": json.dumps({"events": [_event(1), {"seq": 2, "values": {"f0": 1.0}}]}),
    "another feature": json.dumps({"events": [_event(1, bogus=1.0)]}),
    "no values": json.dumps({"events": [{"seq": 1, "values": {}}]}),
    "an empty batch": json.dumps({"events": []}),
    "events not a list": json.dumps({"events": {"seq": 1}}),
    "an event not an object": json.dumps({"events": [[1, 2]]}),
    "an event with another member": json.dumps({"events": [{**_event(1), "id": "x"}]}),
    "a body with another member": json.dumps({"events": [_event(1)], "more": 1}),
    "seq a string": json.dumps({"events": [{"seq": "1", "values": _event(1)["values"]}]}),
    "seq a bool": json.dumps({"events": [{"seq": True, "values": _event(1)["values"]}]}),
    "seq negative": json.dumps({"events": [_event(-1)]}),
    "seq too large": json.dumps({"events": [_event(2**63)]}),
    "values a list": json.dumps({"events": [{"seq": 1, "values": [1.0, 2.0, 3.0, 4.0]}]}),
    "513 values": json.dumps({"events": [{"seq": 1, "values": {f"g{i}": 1.0 for i in range(513)}}]}),
    "a seq twice": json.dumps({"events": [_event(1), _event(2), _event(2)]}),
    "seqs decreasing": json.dumps({"events": [_event(1), _event(5), _event(3)]}),
    "a list": json.dumps([_event(1)]),
    "not JSON": '{"events": [',
}


@pytest.mark.parametrize("case", READER_CASES)
def test_the_fast_reader_answers_as_the_full_parser(
    case: str, client: TestClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever a body holds, the answer (status, problem, results) is the one the full parser alone gives."""
    headers = {**tenant.analyst, "Content-Type": "application/json"}

    def answer(name: str) -> tuple[int, str]:
        stream = create_stream(client, tenant.analyst, name=name)
        response = client.post(f"/api/v1/streams/{stream['id']}/events", content=READER_CASES[case], headers=headers)
        body = response.json()
        for varies in ("request_id", "instance"):  # the request's own, and its stream's path
            body.pop(varies, None)
        return response.status_code, json.dumps(body, sort_keys=True)  # as text: true is not 1 there

    fast = answer("fast")
    monkeypatch.setattr("vigil.streams.router.plain_events", lambda *_, **__: None)  # the full parser for all
    assert fast == answer("full")


def test_values_near_the_float_limit_are_finite(client: TestClient, tenant: Tenant) -> None:
    # Their sum overflows to infinity; each of them is still a finite number, and an integer one is a number too.
    stream = create_stream(client, tenant.analyst)
    events = make_events(3)
    events[1]["values"] = dict.fromkeys(FEATURES, 1.5e308)
    events[2]["values"] = dict.fromkeys(FEATURES, 7)
    answer = send(client, stream["id"], events, tenant.analyst)
    assert (answer["accepted"], answer["last_seq"]) == (3, 3)


def test_seqs_must_increase_within_a_batch(client: TestClient, tenant: Tenant) -> None:
    stream = create_stream(client, tenant.analyst)
    events = make_events(5)
    events[3]["seq"] = 2
    refused = client.post(f"/api/v1/streams/{stream['id']}/events", json={"events": events}, headers=tenant.analyst)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["loc"] == ["body", "events", "3", "seq"]
    assert stream_of(client, stream["id"], tenant.viewer)["last_seq"] is None


def test_refused_configurations(client: TestClient, tenant: Tenant) -> None:
    def create(**body: Any) -> Any:
        return client.post("/api/v1/streams", json={"name": "s", "features": ["a"], **body}, headers=tenant.analyst)

    batch = create(algorithm="iforest")
    assert batch.status_code == 422
    assert "online" in batch.json()["detail"]
    assert create(algorithm="magic").status_code == 422
    assert create(algorithm="sad", features=["a", "b"]).status_code == 422  # univariate: one feature
    assert create(algorithm="hst", parameters={"n_trees": 0}).json()["errors"][0]["loc"] == [
        "body",
        "parameters",
        "n_trees",
    ]
    assert create(threshold={"kind": "model"}).status_code == 422
    assert create(threshold={"kind": "quantile", "q": 1.5}).status_code == 422
    assert client.post("/api/v1/streams", json={"name": "s"}, headers=tenant.analyst).status_code == 422
    assert create(algorithm="hst", detector_id="det_nothing").status_code == 422  # a detector or an algorithm
    assert create(detector_id="det_nothing").status_code == 422  # a detector's features are its model's
    assert (
        client.post("/api/v1/streams", json={"name": "s", "detector_id": "det_x"}, headers=tenant.analyst).status_code
        == 404
    )
    assert create(algorithm="sad", features=["a"]).status_code == 201


def test_quota_and_events_per_second(client: TestClient, tenant: Tenant) -> None:
    root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
    limits = {"quotas": {"streams": 1, "stream_events_per_second": 150}}
    assert client.patch(f"/api/v1/tenants/{tenant.id}", json=limits, headers=root).status_code == 200
    stream = create_stream(client, tenant.analyst)
    refused = client.post("/api/v1/streams", json={"name": "b", "features": ["a"]}, headers=tenant.analyst)
    assert refused.status_code == 403
    assert refused.json()["quota"] == "streams"
    usage = client.get(f"/api/v1/tenants/{tenant.id}/usage", headers=root).json()["usage"]
    assert usage["streams"] == {"used": 1, "limit": 1}

    send(client, stream["id"], make_events(100), tenant.analyst)
    over = client.post(
        f"/api/v1/streams/{stream['id']}/events", json={"events": make_events(100, start=101)}, headers=tenant.analyst
    )
    if over.status_code == 200:  # the one-second window turned between the two batches: the next one is over
        over = client.post(
            f"/api/v1/streams/{stream['id']}/events",
            json={"events": make_events(100, start=201)},
            headers=tenant.analyst,
        )
    assert over.status_code == 429, over.text
    assert over.json()["quota"] == "stream_events_per_second"
    assert int(over.headers["Retry-After"]) >= 1
    seen = stream_of(client, stream["id"], tenant.viewer)["events_seen"]
    assert seen in (100, 200)  # the refused batch taught nothing


def test_an_oversized_batch_is_413(tmp_path: Path) -> None:
    with TestClient(create_app(make_settings(tmp_path / "d", stream_max_batch_events=10), run_workers=False)) as client:
        root = bearer(login(client, ADMIN_EMAIL, ADMIN_PASSWORD))
        stream = create_stream(client, root)
        response = client.post(f"/api/v1/streams/{stream['id']}/events", json={"events": make_events(11)}, headers=root)
        assert response.status_code == 413
        assert response.json()["limit_events"] == 10
        assert send(client, stream["id"], make_events(10), root)["accepted"] == 10


def test_anomalies_drift_and_metrics(client: TestClient, tenant: Tenant) -> None:
    planted = tuple(range(400, 1200, 80))
    stream = create_stream(client, tenant.analyst, threshold={"kind": "quantile", "q": 0.98})
    events = make_events(1200, anomalies=planted)
    # A concept drift: from seq 1201 every feature moves by 5.
    drifted = [{"seq": e["seq"] + 1200, "values": {f: v + 5.0 for f, v in e["values"].items()}} for e in events[:800]]
    for start in range(0, 1200, 200):
        send(client, stream["id"], events[start : start + 200], tenant.analyst)
    for start in range(0, 800, 200):
        send(client, stream["id"], drifted[start : start + 200], tenant.analyst)

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 7} if cursor is None else {"limit": 7, "cursor": cursor}
        response = client.get(f"/api/v1/streams/{stream['id']}/anomalies", params=params, headers=tenant.viewer)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    flagged = [a for items in pages for a in items]
    seqs = [a["seq"] for a in flagged]
    assert seqs == sorted(seqs, reverse=True)
    assert len(set(seqs)) == len(seqs)
    assert set(planted) <= set(seqs)
    first = next(a for a in flagged if a["seq"] == planted[0])
    assert first["values"] == events[planted[0] - 1]["values"]
    assert first["score"] >= first["threshold"]

    details = stream_of(client, stream["id"], tenant.viewer)
    assert details["anomaly_count"] == len(flagged)
    assert details["drift_count"] >= 1
    drift_seqs = [d["seq"] for d in details["drift_events"]]
    assert any(1200 < seq <= 1700 for seq in drift_seqs), drift_seqs
    metrics = client.get(f"/api/v1/streams/{stream['id']}/metrics", headers=tenant.viewer).json()
    assert metrics["events_seen"] == 2000
    assert metrics["anomalies"] == len(flagged)
    assert metrics["events_per_second"] == pytest.approx(2000 / 60)
    assert metrics["anomaly_rate"] == pytest.approx(len(flagged) / (2000 - 50))
    assert metrics["drift_events"] == details["drift_count"]
    drifts = client.get(f"/api/v1/streams/{stream['id']}/drifts", headers=tenant.viewer).json()["items"]
    assert [d["seq"] for d in drifts][: len(drift_seqs)] == drift_seqs
    # …and the server's Prometheus metrics count the same (this app served no other stream).
    exposed = client.get("/metrics").text
    assert f"vigil_stream_drifts_total {float(details['drift_count'])}" in exposed
    assert f"vigil_stream_anomalies_total {float(len(flagged))}" in exposed
    assert 'vigil_stream_events_total{status="new"} 2000.0' in exposed


def test_a_trained_batch_model_scores_a_stream(
    client: TestClient, tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = make_events(300, seed=3)
    csv = "f0,f1,f2,f3\n" + "\n".join(",".join(str(e["values"][f]) for f in FEATURES) for e in rows)
    dataset = client.post(
        "/api/v1/datasets",
        params={"name": "train"},
        content=csv.encode(),
        headers={**tenant.analyst, "Content-Type": "text/csv"},
    ).json()
    detector = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "iforest", "parameters": {"random_state": 0}, "contamination": 0.05},
        headers=tenant.analyst,
    ).json()
    job = client.post(
        f"/api/v1/detectors/{detector['id']}/train", json={"dataset_id": dataset["id"]}, headers=tenant.analyst
    )
    assert wait_for_job(client, job.json()["id"], tenant.analyst)["status"] == "succeeded"
    # The detector's model is read from the blob store and verified before the stream's quota check takes the
    # tenant's row — on SQLite the database's one write lock, which other writers would wait for meanwhile.
    writable: list[bool] = []
    for_batch_model = ml.OnlineModel.for_batch_model

    def probing(*args: Any, **kwargs: Any) -> ml.OnlineModel:
        if settings.sqlite_path is not None:
            writable.append(write_lock_is_free(settings.sqlite_path))
        return for_batch_model(*args, **kwargs)

    monkeypatch.setattr(ml.OnlineModel, "for_batch_model", probing)
    stream = create_stream(
        client, tenant.analyst, algorithm=None, parameters={}, features=None, detector_id=detector["id"], warmup=0
    )
    assert False not in writable, "the stream's model was loaded while the database's write lock was held"
    assert stream["threshold"] == {"kind": "model"}
    assert stream["model_version"] == 1
    assert stream["features"] == FEATURES
    events = make_events(40, seed=9, anomalies=(5, 30))
    streamed = send(client, stream["id"], events, tenant.analyst)["results"]
    detected = client.post(
        f"/api/v1/detectors/{detector['id']}/detect",
        json={"records": [e["values"] for e in events]},
        headers=tenant.analyst,
    ).json()["results"]
    assert [(r["score"], r["is_anomaly"]) for r in streamed] == [(r["score"], r["is_anomaly"]) for r in detected]
    assert streamed[4]["is_anomaly"]
    assert streamed[29]["is_anomaly"]


def test_other_tenants_see_nothing(client: TestClient, make_tenant: Any) -> None:
    a, b = make_tenant(), make_tenant()
    stream = create_stream(client, a.analyst)
    send(client, stream["id"], make_events(60), a.analyst)
    base = f"/api/v1/streams/{stream['id']}"
    for method, path, body in (
        ("GET", "", None),
        ("PATCH", "", {"name": "stolen"}),
        ("DELETE", "", None),
        ("POST", "/events", {"events": make_events(1, start=100)}),
        ("GET", "/anomalies", None),
        ("GET", "/drifts", None),
        ("GET", "/metrics", None),
    ):
        response = client.request(method, base + path, json=body, headers=b.admin)
        assert response.status_code == 404, (method, path, response.text)
    assert client.get("/api/v1/streams", headers=b.admin).json()["items"] == []
    kept = stream_of(client, stream["id"], a.viewer)
    assert (kept["name"], kept["events_seen"]) == ("sensors", 60)

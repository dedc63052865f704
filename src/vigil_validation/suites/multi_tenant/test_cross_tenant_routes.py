"""Generated from the OpenAPI document: for **every** route that takes an id, tenant B presents tenant A's ids
(read, update, delete, train, detect, cancel…) and is refused exactly as for an id that does not exist — 404 for
the routes B may call, the same 403 as for a made-up id for routes B's role may not call at all — and tenant A's
objects are unchanged afterwards. A new route with an id is covered without touching this file; a new *kind* of
id fails here until it is given one of A's objects."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant

PARAM = re.compile(r"\{([^}]+)\}")
CSV = b"a,b\n1,2\n3,4\n5,6\n7,8\n9,1\n2,3\n"


def _bodies(b_dataset: str) -> list[tuple[re.Pattern[str], str, dict[str, Any]]]:
    """Valid requests (body, query, content), so that a refusal is about the id, never about the request
    (validation runs first)."""
    return [
        (re.compile(r"/detectors/[^/]+/train$"), "POST", {"json": {"dataset_id": b_dataset}}),
        (re.compile(r"/detectors/[^/]+/detect$"), "POST", {"json": {"records": [{"a": 1, "b": 2}]}}),
        (re.compile(r"/versions/compare$"), "POST", {"json": {"a": 1, "b": 1, "dataset_id": b_dataset}}),
        (
            re.compile(r"/versions/import$"),
            "POST",
            {"content": b"not a model", "headers": {"Content-Type": "application/octet-stream"}},
        ),
        (
            re.compile(r"/feedback$"),
            "POST",
            {"json": {"dataset_id": b_dataset, "labels": [{"index": 0, "label": "anomaly"}]}},
        ),
        (re.compile(r"/feedback$"), "DELETE", {"params": {"dataset_id": b_dataset}}),
        (
            re.compile(r"/streams/[^/]+/events$"),
            "POST",
            {"json": {"events": [{"seq": 1000, "values": {"a": 1.0, "b": 2.0}}]}},
        ),
        (re.compile(r"/users/[^/]+$"), "PATCH", {"json": {"role": "viewer"}}),
        (re.compile(r"/tenants/[^/]+$"), "PATCH", {"json": {"name": "stolen-name"}}),
        (re.compile(r".*"), "PATCH", {"json": {"name": "stolen"}}),
        (re.compile(r".*"), "POST", {"json": {}}),
    ]


def _owner_ids(a: ProvisionedTenant) -> dict[str, str]:
    dataset = a.analyst.datasets.upload(CSV, name="a-secret")
    detector = a.analyst.detectors.create(name="a-secret", algorithm="iforest", contamination=0.2)
    job = a.analyst.detectors.train(detector["id"], dataset["id"])
    users = {u["email"]: u["id"] for u in a.admin.list_users()["items"]}
    key = a.admin.call("POST", "/api/v1/api-keys", json={"name": "a-key", "scopes": ["datasets:read"]})
    sessions = a.admin.call("GET", "/api/v1/auth/sessions")["items"]
    a.analyst.detectors.feedback(detector["id"], dataset_id=dataset["id"], labels={0: "anomaly"})
    labels = a.analyst.detectors.list_feedback(detector["id"])["items"]
    stream = a.analyst.streams.create(name="a-secret", features=["a", "b"], parameters={"seed": 1})
    a.analyst.streams.send(stream["id"], [{"seq": 1, "values": {"a": 1.0, "b": 2.0}}])
    return {
        "dataset_id": dataset["id"],
        "detector_id": detector["id"],
        "job_id": job["id"],
        "user_id": users[a.emails["analyst"]],
        "key_id": key["id"],
        "session_id": sessions[0]["id"],
        "label_id": labels[0]["id"],
        "version": "1",  # the version A's training makes: B must not reach it either way
        "stream_id": stream["id"],
        "tenant_id": a.id,
        "_key_secret": key["key"],
    }


def _snapshot(a: ProvisionedTenant, ids: dict[str, str]) -> dict[str, Any]:
    dataset = a.viewer.datasets.get(ids["dataset_id"])
    detector = a.viewer.detectors.get(ids["detector_id"])
    user = a.admin.get_user(ids["user_id"])
    stream = a.viewer.streams.get(ids["stream_id"])
    return {
        "dataset": (dataset["name"], dataset["rows"]),
        "detector": (detector["name"], detector["algorithm"]),
        "user": (user["role"], user["is_active"]),
        "stream": (stream["name"], stream["events_seen"], stream["last_seq"]),
        "keys": sorted((k["id"], k.get("revoked_at")) for k in a.admin.call("GET", "/api/v1/api-keys")["items"]),
        "sessions": sorted(s["id"] for s in a.admin.call("GET", "/api/v1/auth/sessions")["items"]),
        "me": a.admin.me()["tenant"]["id"],
    }


@pytest.mark.smoke
def test_every_route_with_an_id_refuses_another_tenants_ids(
    tenant_factory: Callable[[], ProvisionedTenant], record: Callable[..., None]
) -> None:
    a, b = tenant_factory(), tenant_factory()
    ids = _owner_ids(a)
    b_dataset = b.analyst.datasets.upload(CSV, name="b-own")["id"]
    before = _snapshot(a, ids)
    spec = b.viewer.openapi()
    bodies = _bodies(b_dataset)
    attempts = 0
    failures: list[str] = []
    for path, operations in spec["paths"].items():
        names = PARAM.findall(path)
        if not names or not path.startswith("/api/v1/"):
            continue
        unknown = [n for n in names if n not in ids]
        assert not unknown, f"{path}: no object of tenant A for {unknown}; add one to _owner_ids"
        real = PARAM.sub(lambda m: ids[m.group(1)], path)
        made_up = PARAM.sub(lambda m: f"{m.group(1)[:3]}_doesnotexist000000000000", path)
        for method in sorted(operations):
            if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                continue
            request = next((req for rx, m, req in bodies if m == method.upper() and rx.search(path)), {})
            for client in (b.admin, b.analyst):
                attempts += 1
                got = client.send(method.upper(), real, **request)
                if got.status_code == 404:
                    assert_problem(got, 404)
                    continue
                control = client.send(method.upper(), made_up, **request)
                if got.status_code == 403 and control.status_code == 403:
                    continue  # the role may not call the route at all: the same answer whatever the id
                failures.append(f"{method.upper()} {path}: {got.status_code} (made-up id: {control.status_code})")
    assert not failures, "cross-tenant ids not refused as unknown:\n" + "\n".join(failures)
    assert _snapshot(a, ids) == before, "tenant A's objects changed"
    # A's key and session still work: B's DELETEs did nothing.
    assert a.admin.send("GET", "/api/v1/me").status_code == 200
    with a.admin.with_token(ids["_key_secret"]) as key:
        assert key.send("GET", "/api/v1/datasets").status_code == 200
    record("cross_tenant_attempts", attempts)

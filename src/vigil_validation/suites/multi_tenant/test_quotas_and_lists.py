"""Lists never show another tenant's items; quotas hold at their exact limit, name themselves, and a refused
upload leaves nothing behind; the usage report shows it all."""

from __future__ import annotations

import time
from collections.abc import Callable

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant

CSV = b"a,b\n1,2\n3,4\n5,6\n"


def test_lists_never_show_foreign_items(tenant_factory: Callable[[], ProvisionedTenant]) -> None:
    a, b = tenant_factory(), tenant_factory()
    dataset = a.analyst.datasets.upload(CSV, name="a-only")
    detector = a.analyst.detectors.create(name="a-only", algorithm="iforest")
    job = a.analyst.detectors.train(detector["id"], dataset["id"])
    a.admin.call("POST", "/api/v1/api-keys", json={"name": "a-key", "scopes": ["datasets:read"]})
    foreign = {dataset["id"], detector["id"], job["id"], a.id}
    foreign |= {u["id"] for u in a.admin.list_users()["items"]}
    foreign |= {k["id"] for k in a.admin.call("GET", "/api/v1/api-keys")["items"]}
    foreign |= {s["id"] for s in a.admin.call("GET", "/api/v1/auth/sessions")["items"]}
    for path in ("datasets", "detectors", "jobs", "users", "api-keys", "audit-events", "auth/sessions"):
        items = b.admin.call("GET", f"/api/v1/{path}", params={"limit": 500})["items"]
        leaked = {i["id"] for i in items} & foreign
        assert not leaked, f"/api/v1/{path} shows tenant A's {leaked}"


def _usage(client: VigilClient, tenant_id: str) -> dict[str, dict[str, int]]:
    return dict(client.call("GET", f"/api/v1/tenants/{tenant_id}/usage")["usage"])


def test_quotas_hold_at_their_exact_limit(admin: VigilClient, tenant_factory: Callable[[], ProvisionedTenant]) -> None:
    t = tenant_factory()
    admin.call(
        "PATCH",
        f"/api/v1/tenants/{t.id}",
        json={"quotas": {"datasets": 2, "detectors": 1, "rows_per_dataset": 3}},
    )
    t.analyst.datasets.upload(CSV, name="one")  # 3 rows: exactly the row limit
    too_long = t.analyst.send(
        "POST",
        "/api/v1/datasets",
        params={"name": "four"},
        content=CSV + b"7,8\n",
        headers={"Content-Type": "text/csv"},
    )
    body = assert_problem(too_long, 403, "quota-exceeded")
    assert (body["quota"], body["limit"], body["used"]) == ("rows_per_dataset", 3, 4)
    t.analyst.datasets.upload(CSV, name="two")
    third = t.analyst.send(
        "POST", "/api/v1/datasets", params={"name": "three"}, content=CSV, headers={"Content-Type": "text/csv"}
    )
    body = assert_problem(third, 403, "quota-exceeded")
    assert (body["quota"], body["limit"], body["used"]) == ("datasets", 2, 2)
    assert {d["name"] for d in t.viewer.datasets.iter_all()} == {"one", "two"}, "a refused upload left something"

    t.analyst.detectors.create(name="only", algorithm="iforest")
    second = t.analyst.send("POST", "/api/v1/detectors", json={"name": "second", "algorithm": "iforest"})
    body = assert_problem(second, 403, "quota-exceeded")
    assert (body["quota"], body["limit"], body["used"]) == ("detectors", 1, 1)

    usage = _usage(t.admin, t.id)
    assert usage["datasets"] == {"used": 2, "limit": 2}
    assert usage["detectors"] == {"used": 1, "limit": 1}
    stored = usage["storage_bytes"]["used"]
    assert stored > 0
    # Storage: exactly what is stored now is the limit, so the next byte is refused.
    admin.call("PATCH", f"/api/v1/tenants/{t.id}", json={"quotas": {"datasets": 10, "storage_bytes": stored}})
    over = t.analyst.send(
        "POST", "/api/v1/datasets", params={"name": "more"}, content=CSV, headers={"Content-Type": "text/csv"}
    )
    body = assert_problem(over, 403, "quota-exceeded")
    assert (body["quota"], body["limit"], body["used"]) == ("storage_bytes", stored, stored)
    assert _usage(admin, t.id)["datasets"]["used"] == 2


def test_upload_size_and_api_calls_per_tenant(
    admin: VigilClient, tenant_factory: Callable[[], ProvisionedTenant], staleness_bound: float
) -> None:
    t, other = tenant_factory(), tenant_factory()
    admin.call("PATCH", f"/api/v1/tenants/{t.id}", json={"config": {"max_upload_bytes": 64}})
    big = b"a,b\n" + b"1,2\n" * 40
    response = t.analyst.send(
        "POST", "/api/v1/datasets", params={"name": "big"}, content=big, headers={"Content-Type": "text/csv"}
    )
    assert assert_problem(response, 413, "payload-too-large")["limit_bytes"] == 64
    other.analyst.datasets.upload(big, name="fine-elsewhere")  # the other tenant keeps the server's limit

    # The hour's counter keeps what the tenant already spent when its quota changes (the refused upload above):
    # five calls more than that are allowed, the sixth is not.
    limit = _usage(admin, t.id)["api_calls_per_hour"]["used"] + 5
    admin.call("PATCH", f"/api/v1/tenants/{t.id}", json={"quotas": {"api_calls_per_hour": limit}})
    # The call quota travels with a resolved credential: the new limit holds on every API process once the target's
    # staleness bound has passed. Waited out, not retried: every try would spend the quota being measured.
    time.sleep(staleness_bound)
    answers = [t.viewer.send("GET", "/api/v1/datasets").status_code for _ in range(5)]
    assert answers == [200] * 5
    spent = t.analyst.send("GET", "/api/v1/datasets")  # another user of the same tenant: one shared quota
    body = assert_problem(spent, 429, "rate-limited")
    assert body["quota"] == "api_calls_per_hour"
    assert int(spent.headers["Retry-After"]) > 0
    assert other.viewer.send("GET", "/api/v1/datasets").status_code == 200
    assert _usage(admin, t.id)["api_calls_per_hour"]["limit"] == limit

"""Listing detectors: newest first, page by page with the cursor, one tenant's only (the list query is built once,
its tenant, limit and cursor bound per request)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Tenant
from vigil.config import Settings


def test_pages_follow_the_cursor_newest_first_within_the_tenant(
    client: TestClient, make_tenant: Callable[[], Tenant]
) -> None:
    tenant, other = make_tenant(), make_tenant()
    made = []
    for i in range(5):
        response = client.post(
            "/api/v1/detectors", json={"name": f"d{i}", "algorithm": "iforest"}, headers=tenant.analyst
        )
        assert response.status_code == 201, response.text
        made.append(response.json()["id"])
    client.post("/api/v1/detectors", json={"name": "theirs", "algorithm": "iforest"}, headers=other.analyst)

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, str | int] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/detectors", params=params, headers=tenant.viewer).json()
        assert len(page["items"]) <= 2
        seen += [item["id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)
    assert pages == 3
    theirs = client.get("/api/v1/detectors", headers=other.viewer).json()
    assert [item["name"] for item in theirs["items"]] == ["theirs"]


def test_a_listed_detector_reads_as_the_detector_itself(client: TestClient, make_tenant: Callable[[], Tenant]) -> None:
    """The list reads rows, not entities: every field must come out as `GET /detectors/{id}` shows it (aliases,
    defaults for empty columns, timestamps with their zone)."""
    tenant = make_tenant()
    created = client.post(
        "/api/v1/detectors",
        json={
            "name": "full",
            "algorithm": "iforest",
            "description": "every field set",
            "features": ["a", "b"],
            "parameters": {"n_estimators": 50},
            "contamination": 0.05,
        },
        headers=tenant.analyst,
    )
    assert created.status_code == 201, created.text
    one = client.get(f"/api/v1/detectors/{created.json()['id']}", headers=tenant.viewer).json()
    page = client.get("/api/v1/detectors", headers=tenant.viewer).json()
    assert page["items"] == [one]
    assert one["previous_versions"] == []
    assert one["threshold"] is None
    assert one["created_at"].endswith("Z")


def test_on_sqlite_a_page_is_read_with_no_hop_to_a_worker_thread(
    client: TestClient, tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page is read on the event loop (`web/endpoints.quick_read`); PostgreSQL reads it in a worker thread."""
    made = client.post("/api/v1/detectors", json={"name": "d", "algorithm": "iforest"}, headers=tenant.analyst)
    assert made.status_code == 201, made.text
    client.get("/api/v1/detectors", headers=tenant.viewer).raise_for_status()  # the caller resolved, and cached
    hops: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(getattr(func, "__name__", type(func).__name__))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    page = client.get("/api/v1/detectors", headers=tenant.viewer).json()
    assert [item["id"] for item in page["items"]] == [made.json()["id"]]
    assert (hops == []) == settings.is_sqlite, hops

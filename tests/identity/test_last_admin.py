"""A tenant always keeps an active admin (finding 10): two admins demoting each other at the same moment cannot both
win — on SQLite and on PostgreSQL. (One at a time it was never possible: nobody may demote themself.)"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Tenant, bearer, login, provision_tenant
from vigil.app import create_app
from vigil.config import Settings


@pytest.fixture
def any_db_client(any_db_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(any_db_settings), raise_server_exceptions=False) as client:
        yield client


def _admin(client: TestClient, tenant: Tenant) -> tuple[str, dict[str, str]]:
    email = f"admin-{uuid.uuid4().hex[:8]}@vigil.test"
    made = client.post(
        "/api/v1/users", json={"email": email, "password": PASSWORD, "role": "admin"}, headers=tenant.admin
    )
    assert made.status_code == 201, made.text
    return made.json()["id"], bearer(login(client, email, PASSWORD))


def _id_of(client: TestClient, headers: dict[str, str]) -> str:
    user_id: str = client.get("/api/v1/me", headers=headers).json()["user"]["id"]
    return user_id


def _active_admins(client: TestClient, headers: dict[str, str]) -> int:
    users = client.get("/api/v1/users", headers=headers, params={"limit": 500}).json()["items"]
    return sum(1 for u in users if u["role"] == "admin" and u["is_active"])


def test_two_admins_demoting_each_other_at_once_leave_one(any_db_client: TestClient) -> None:
    client = any_db_client
    for _ in range(3):
        tenant = provision_tenant(client)
        second_id, second = _admin(client, tenant)
        first_id = _id_of(client, tenant.admin)
        # The tenant's other users are an analyst and a viewer: exactly two admins race.
        results = _race(
            client,
            first=(f"/api/v1/users/{second_id}", tenant.admin),
            second=(f"/api/v1/users/{first_id}", second),
        )
        # One wins; the other loses — refused by the rule (409) or, if the winner was quicker, as a non-admin (403).
        assert sorted(results.values())[0] == 200, results
        assert sorted(results.values())[1] in (403, 409), results
        survivor = tenant.admin if results["first"] == 200 else second
        assert _active_admins(client, survivor) == 1


def _race(
    client: TestClient, *, first: tuple[str, dict[str, str]], second: tuple[str, dict[str, str]]
) -> dict[str, int]:
    """Both demotions sent at the same moment (a barrier), each by one admin against the other."""
    start = threading.Barrier(2)
    results: dict[str, int] = {}

    def demote(name: str, path: str, headers: dict[str, str]) -> None:
        start.wait()
        response: httpx.Response = client.patch(path, json={"role": "viewer"}, headers=headers)
        results[name] = response.status_code

    threads = [
        threading.Thread(target=demote, args=("first", *first)),
        threading.Thread(target=demote, args=("second", *second)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results

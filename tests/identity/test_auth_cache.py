"""The principal cache: requests are authenticated without the database while an entry may be believed, and every
change of authority takes effect within the cache's bound — at once in the process that made it, within
`auth_cache_ttl_s` in another process sharing the database (two apps on one SQLite file stand in for two)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD, bearer, make_settings
from tests.identity.conftest import tokens
from vigil.app import create_app
from vigil.identity.auth_cache import AuthCache
from vigil.identity.permissions import Role
from vigil.identity.principal import Principal

TTL_S = 2.0


def principal(name: str = "u") -> Principal:
    return Principal(user_id=name, email=f"{name}@example.com", tenant_id="ten_1", role=Role.ANALYST)


# -- the cache alone --------------------------------------------------------------------------------------------
def test_an_entry_expires_after_the_ttl_or_the_credential() -> None:
    cache = AuthCache(ttl_s=60)
    cache.put("a", principal("a"), generation=cache.generation)
    cache.put("b", principal("b"), generation=cache.generation, valid_for_s=0.05)
    cache.put("c", principal("c"), generation=cache.generation, valid_for_s=-1)  # already ended: never kept
    assert cache.get("a") == principal("a")
    assert cache.get("c") is None
    time.sleep(0.1)
    assert cache.get("b") is None
    assert cache.get("a") is not None


def test_an_answer_resolved_before_a_change_is_not_kept() -> None:
    cache = AuthCache(ttl_s=60)
    cache.put("a", principal("a"), generation=cache.generation)
    started = cache.generation  # a request starts resolving "b"…
    cache.invalidate_all()  # …an identity change commits meanwhile…
    cache.put("b", principal("b"), generation=started)  # …so its (possibly stale) answer is dropped
    assert cache.get("a") is None
    assert cache.get("b") is None


def test_the_cache_is_bounded_and_can_be_off() -> None:
    cache = AuthCache(ttl_s=60, max_entries=3)
    for name in "abcd":
        cache.put(name, principal(name), generation=cache.generation)
    assert len(cache) == 3
    assert cache.get("a") is None  # the least recently used went first
    off = AuthCache(ttl_s=0)
    off.put("a", principal("a"), generation=off.generation)
    assert off.get("a") is None


def test_keys_are_digests_of_the_whole_credential() -> None:
    assert AuthCache.key("vgl_abc_secret1") != AuthCache.key("vgl_abc_secret2")
    assert "secret" not in AuthCache.key("vgl_abc_secret1")


# -- two processes on one database ------------------------------------------------------------------------------
@pytest.fixture
def two_apps(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    """Two apps (each with its own cache, as two server processes have) on one SQLite database."""
    settings = make_settings(tmp_path / "shared", auth_cache_ttl_s=TTL_S)
    with ExitStack() as stack:
        first = stack.enter_context(TestClient(create_app(settings, run_workers=False), raise_server_exceptions=False))
        second = stack.enter_context(TestClient(create_app(settings, run_workers=False), raise_server_exceptions=False))
        yield first, second


def _setup(client: TestClient, role: str = "admin") -> dict[str, Any]:
    """A tenant with two admins: the one whose credentials are probed, and `boss`, who changes them."""
    root = bearer(tokens(client, ADMIN_EMAIL, ADMIN_PASSWORD)["access_token"])
    tenant = client.post("/api/v1/tenants", json={"name": f"t-{uuid.uuid4().hex[:8]}"}, headers=root).json()
    made = {}
    for name in ("user", "boss"):
        email = f"{name}-{uuid.uuid4().hex[:8]}@example.com"
        made[name] = client.post(
            "/api/v1/users",
            json={"email": email, "password": PASSWORD, "role": role, "tenant_id": tenant["id"]},
            headers=root,
        ).json()
        made[name]["headers"] = bearer(tokens(client, email, PASSWORD)["access_token"])
    headers = made["user"]["headers"]
    key = client.post("/api/v1/api-keys", json={"name": "k", "scopes": ["datasets:read"]}, headers=headers).json()
    return {
        "root": root,
        "boss": made["boss"]["headers"],
        "tenant": tenant["id"],
        "user": made["user"]["id"],
        "headers": headers,
        "key": key,
    }


# Each change of authority, made through the second app: (what to do, the request that must then fail, its status).
Change = Callable[[TestClient, dict[str, Any]], None]


def _logout(client: TestClient, s: dict[str, Any]) -> None:
    assert client.post("/api/v1/auth/logout", headers=s["headers"]).status_code == 204


def _revoke_key(client: TestClient, s: dict[str, Any]) -> None:
    assert client.delete(f"/api/v1/api-keys/{s['key']['id']}", headers=s["headers"]).status_code == 204


def _disable(client: TestClient, s: dict[str, Any]) -> None:
    response = client.patch(f"/api/v1/users/{s['user']}", json={"is_active": False}, headers=s["boss"])
    assert response.status_code == 200, response.text


def _demote(client: TestClient, s: dict[str, Any]) -> None:
    response = client.patch(f"/api/v1/users/{s['user']}", json={"role": "viewer"}, headers=s["boss"])
    assert response.status_code == 200, response.text


def _suspend(client: TestClient, s: dict[str, Any]) -> None:
    assert client.post(f"/api/v1/tenants/{s['tenant']}/suspend", headers=s["root"]).status_code == 200


def _probe(client: TestClient, s: dict[str, Any], credential: str) -> tuple[int, str | None]:
    headers = {"X-API-Key": s["key"]["key"]} if credential == "key" else s["headers"]
    path = "/api/v1/datasets" if credential == "key" else "/api/v1/me"
    response = client.get(path, headers=headers)
    role = response.json().get("role") if path.endswith("/me") and response.status_code == 200 else None
    return response.status_code, role


CASES = {
    # name: (change, credential probed, what the probe sees once the change applies)
    "logout": (_logout, "token", (401, None)),
    "revoked-key": (_revoke_key, "key", (401, None)),
    "disabled-user": (_disable, "token", (401, None)),
    "demoted-user": (_demote, "token", (200, "viewer")),
    "suspended-tenant-token": (_suspend, "token", (401, None)),
    "suspended-tenant-key": (_suspend, "key", (401, None)),
}


@pytest.mark.parametrize("case", CASES)
def test_a_change_applies_at_once_where_it_was_made(two_apps: tuple[TestClient, TestClient], case: str) -> None:
    first, _ = two_apps
    change, credential, after = CASES[case]
    setup = _setup(first)
    before = _probe(first, setup, credential)
    assert before[0] == 200
    assert _probe(first, setup, credential) == before  # now answered from the cache
    change(first, setup)
    assert _probe(first, setup, credential) == after


@pytest.mark.parametrize("case", CASES)
def test_a_change_elsewhere_applies_within_the_bound(two_apps: tuple[TestClient, TestClient], case: str) -> None:
    first, second = two_apps
    change, credential, after = CASES[case]
    setup = _setup(first)
    cache: AuthCache = first.app.state.identity.cache  # type: ignore[attr-defined]
    before = _probe(first, setup, credential)
    hits = cache.hits
    assert _probe(first, setup, credential) == before
    assert cache.hits == hits + 1, "the second request was not answered from the cache"
    change(second, setup)  # another process: the first hears nothing of it
    changed_at = time.monotonic()
    # Until the bound has passed the first process may still believe its entry; once it has, it must not.
    time.sleep(max(0.0, TTL_S - (time.monotonic() - changed_at)) + 0.05)
    assert _probe(first, setup, credential) == after


# -- the caller's description (`GET /me`), cached under the same rules ------------------------------------------
def _tenant_name_seen(client: TestClient, s: dict[str, Any], credential: str) -> str:
    headers = {"X-API-Key": s["key"]["key"]} if credential == "key" else s["headers"]
    response = client.get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["tenant"]["name"])


def _rename_tenant(client: TestClient, s: dict[str, Any], name: str) -> None:
    response = client.patch(f"/api/v1/tenants/{s['tenant']}", json={"name": name}, headers=s["root"])
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("credential", ["token", "key"])
def test_the_description_follows_a_change_at_once_where_it_was_made(
    two_apps: tuple[TestClient, TestClient], credential: str
) -> None:
    first, _ = two_apps
    setup = _setup(first)
    descriptions = first.app.state.identity.descriptions  # type: ignore[attr-defined]
    before = _tenant_name_seen(first, setup, credential)
    hits = descriptions.hits
    assert _tenant_name_seen(first, setup, credential) == before
    assert descriptions.hits == hits + 1, "the second /me was not answered from the cache"
    _rename_tenant(first, setup, "renamed-here")
    assert _tenant_name_seen(first, setup, credential) == "renamed-here"


@pytest.mark.parametrize("credential", ["token", "key"])
def test_the_description_follows_a_change_elsewhere_within_the_bound(
    two_apps: tuple[TestClient, TestClient], credential: str
) -> None:
    first, second = two_apps
    setup = _setup(first)
    before = _tenant_name_seen(first, setup, credential)
    assert _tenant_name_seen(first, setup, credential) == before
    _rename_tenant(second, setup, "renamed-elsewhere")
    time.sleep(TTL_S + 0.05)
    assert _tenant_name_seen(first, setup, credential) == "renamed-elsewhere"

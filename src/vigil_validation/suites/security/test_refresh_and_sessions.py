"""Refresh tokens rotate on every use and a replayed one revokes its whole family; sessions are listed, ended one
by one, time out when idle, and all end on a password change or when the user is disabled."""

from __future__ import annotations

import time

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, eventually
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, bearer, login_pair, new_user, record_attack


def _me(anonymous: VigilClient, access: str) -> int:
    return anonymous.send("GET", f"{API}/me", headers=bearer(access), authenticated=False).status_code


def _refresh(anonymous: VigilClient, refresh: str) -> object:
    return anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": refresh}, authenticated=False)


@pytest.mark.smoke
def test_refresh_rotates_and_reuse_revokes_the_family(
    tenant: ProvisionedTenant,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    record: Recorder,
    staleness_bound: float,
) -> None:
    pair = login_pair(anonymous, tenant.emails["analyst"], validation_config.security.password)
    rotated = anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != pair["refresh_token"]
    assert _me(anonymous, second["access_token"]) == 200

    # An attacker replays the stolen, already-used first token: refused, and the victim's live tokens die too.
    replay = anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(replay, 401)
    record_attack(record, "refresh", "reuse-of-a-spent-token", replay)
    # On every API process within the target's staleness bound.
    assert (
        eventually(lambda: _me(anonymous, second["access_token"]), lambda s: s == 401, within_s=staleness_bound) == 401
    )
    family = anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert_problem(family, 401)
    record_attack(record, "refresh", "family-revoked-after-reuse", family)


def test_garbage_refresh_tokens(anonymous: VigilClient, record: Recorder) -> None:
    for name, body in (
        ("unknown-token", {"refresh_token": "vrt_" + "A" * 43}),
        ("empty-token", {"refresh_token": ""}),
        ("access-token-as-refresh", {"refresh_token": "eyJhbGciOiJIUzI1NiJ9.e30.x"}),
        ("nosql-operator", {"refresh_token": {"$ne": None}}),
        ("unknown-field", {"refresh_token": "x", "admin": True}),
    ):
        response = anonymous.send("POST", f"{API}/auth/refresh", json=body, authenticated=False)
        assert response.status_code in (401, 422), response.text
        assert_problem(response, response.status_code)
        record_attack(record, "refresh", name, response)


def test_several_sessions_listed_and_ended_one_by_one(
    tenant: ProvisionedTenant, anonymous: VigilClient, validation_config: ValidationConfig, record: Recorder
) -> None:
    email, password = tenant.emails["viewer"], validation_config.security.password
    laptop = login_pair(anonymous, email, password, **{"User-Agent": "validation-laptop"})
    phone = login_pair(anonymous, email, password, **{"User-Agent": "validation-phone"})
    listed = anonymous.send("GET", f"{API}/auth/sessions", headers=bearer(laptop["access_token"])).json()["items"]
    agents = [s["user_agent"] for s in listed]
    assert "validation-laptop" in agents
    assert "validation-phone" in agents
    assert [s["current"] for s in listed if s["user_agent"] == "validation-laptop"] == [True]
    phone_session = next(s for s in listed if s["user_agent"] == "validation-phone")
    ended = anonymous.send(
        "DELETE", f"{API}/auth/sessions/{phone_session['id']}", headers=bearer(laptop["access_token"])
    )
    assert ended.status_code == 204
    assert _me(anonymous, phone["access_token"]) == 401
    assert _me(anonymous, laptop["access_token"]) == 200
    # Another user cannot end (or see) this user's sessions.
    stranger = tenant.analyst.send("DELETE", f"{API}/auth/sessions/{listed[0]['id']}")
    assert_problem(stranger, 404)
    record_attack(record, "sessions", "end-another-users-session", stranger)


def test_idle_sessions_time_out(
    tenant: ProvisionedTenant, anonymous: VigilClient, validation_config: ValidationConfig, record: Recorder
) -> None:
    """The tenant admin tightens the idle timeout to 2 s: an unused session then ends, a used one lives on."""
    assert tenant.admin.send("PATCH", f"{API}/tenant/security", json={"session_idle_timeout_s": 2}).status_code == 200
    password = validation_config.security.password
    idle = login_pair(anonymous, tenant.emails["analyst"], password)
    busy = login_pair(anonymous, tenant.emails["viewer"], password)
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        assert _me(anonymous, busy["access_token"]) == 200, "a session in use timed out"
        time.sleep(0.4)
    response = anonymous.send("GET", f"{API}/me", headers=bearer(idle["access_token"]), authenticated=False)
    assert_problem(response, 401)
    record_attack(record, "sessions", "idle-session-used-after-timeout", response)
    assert_problem(anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": idle["refresh_token"]}), 401)


def test_password_change_and_disabling_end_every_session(
    tenant: ProvisionedTenant,
    admin: VigilClient,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    staleness_bound: float,
) -> None:
    password = validation_config.security.password
    email = new_user(admin, tenant.id, password)
    one, two = login_pair(anonymous, email, password), login_pair(anonymous, email, password)
    wrong = anonymous.send(
        "POST",
        f"{API}/me/password",
        json={"current_password": "not the current one at all", "new_password": "a new and long passphrase 2"},
        headers=bearer(one["access_token"]),
    )
    assert_problem(wrong, 422)
    new_password = "a new and long passphrase 2"
    changed = anonymous.send(
        "POST",
        f"{API}/me/password",
        json={"current_password": password, "new_password": new_password},
        headers=bearer(one["access_token"]),
    )
    assert changed.status_code == 204, changed.text
    # On every API process within the target's staleness bound.
    ended = eventually(
        lambda: (_me(anonymous, one["access_token"]), _me(anonymous, two["access_token"])),
        lambda statuses: statuses == (401, 401),
        within_s=staleness_bound,
    )
    assert ended == (401, 401)
    third = login_pair(anonymous, email, new_password)
    user_id = anonymous.send("GET", f"{API}/me", headers=bearer(third["access_token"])).json()["user"]["id"]
    assert tenant.admin.send("PATCH", f"{API}/users/{user_id}", json={"is_active": False}).status_code == 200
    assert (
        eventually(lambda: _me(anonymous, third["access_token"]), lambda s: s == 401, within_s=staleness_bound) == 401
    )
    assert_problem(anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": third["refresh_token"]}), 401)

"""Login brute-force protection: per account-and-address, per account and per address failure counters with
exponential back-off; a lock-out looks the same for accounts that exist and ones that do not."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, make_settings
from tests.identity.conftest import app_client, new_user
from vigil.identity.passwords import Passwords
from vigil.identity.throttle import LoginThrottle

WRONG = "definitely not the right passphrase"


def _login(client: TestClient, email: str, password: str, ip: str | None = None) -> Any:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return client.post("/api/v1/auth/token", json={"email": email, "password": password}, headers=headers)


def _proxied(tmp_path: Path, **overrides: Any) -> Any:
    # Calls come from a trusted proxy, so X-Forwarded-For names the client.
    return app_client(tmp_path, peer="10.0.0.1", trusted_proxies=["10.0.0.0/8"], login_lockout_base_s=30, **overrides)


def test_lockout_after_repeated_failures_even_for_the_right_password(tmp_path: Path) -> None:
    with _proxied(tmp_path) as client:
        email, _ = new_user(client)
        for _ in range(5):
            assert _login(client, email, WRONG, "198.51.100.7").status_code == 401
        locked = _login(client, email, PASSWORD, "198.51.100.7")
        assert locked.status_code == 429
        assert locked.json()["type"] == "/problems/locked-out"
        assert 1 <= int(locked.headers["Retry-After"]) <= 30


def test_another_address_is_not_locked_by_an_attackers_failures(tmp_path: Path) -> None:
    with _proxied(tmp_path, login_max_failures_per_account=8) as client:
        email, _ = new_user(client)
        for _ in range(5):
            _login(client, email, WRONG, "203.0.113.66")
        assert _login(client, email, WRONG, "203.0.113.66").status_code == 429
        # The owner, elsewhere, logs in: the attacker's failures lock the attacker's address for this account only.
        assert _login(client, email, PASSWORD, "198.51.100.1").status_code == 200
        # …until the account-wide threshold (documented: login_max_failures_per_account) is reached from anywhere.
        for n in range(8):
            _login(client, email, WRONG, f"192.0.2.{n + 10}")
        assert _login(client, email, PASSWORD, "198.51.100.1").status_code == 429


def test_other_accounts_from_the_same_address_are_unaffected(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        victim, _ = new_user(client)
        bystander, _ = new_user(client)
        for _ in range(6):
            _login(client, victim, WRONG)
        assert _login(client, victim, PASSWORD).status_code == 429
        assert _login(client, bystander, PASSWORD).status_code == 200


def test_an_address_spraying_many_accounts_is_locked(tmp_path: Path) -> None:
    with _proxied(tmp_path, login_max_failures_per_ip=10) as client:
        email, _ = new_user(client)
        for n in range(10):
            _login(client, f"guess-{n}@example.com", WRONG, "203.0.113.99")
        assert _login(client, email, PASSWORD, "203.0.113.99").status_code == 429
        assert _login(client, email, PASSWORD, "198.51.100.2").status_code == 200


def test_lockout_does_not_reveal_whether_the_account_exists(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        real, _ = new_user(client)
        ghost = "nobody-here@example.com"
        answers = {}
        for email in (real, ghost):
            failures = [_login(client, email, WRONG) for _ in range(5)]
            locked = _login(client, email, WRONG)
            answers[email] = (
                [(r.status_code, r.json()["detail"]) for r in failures],
                (locked.status_code, locked.json()["type"], locked.json()["detail"]),
            )
        assert answers[real] == answers[ghost]
        assert answers[real][1][0] == 429


def test_unknown_and_known_emails_do_the_same_hashing_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with app_client(tmp_path) as client:
        real, _ = new_user(client)
        verified: list[bool] = []
        original = Passwords.verify

        def spy(self: Passwords, password_hash: str | None, password: str) -> bool:
            verified.append(password_hash is None)
            return original(self, password_hash, password)

        monkeypatch.setattr(Passwords, "verify", spy)
        known, unknown = _login(client, real, WRONG), _login(client, "ghost@example.com", WRONG)
        assert (known.status_code, unknown.status_code) == (401, 401)
        assert known.json()["detail"] == unknown.json()["detail"]
        # One argon2 verification each: the real hash, and the dummy one for the unknown account.
        assert verified == [False, True]
        hasher_calls: list[str] = []
        monkeypatch.setattr(
            "argon2.PasswordHasher.verify",
            lambda self, h, p: hasher_calls.append(h) or False,
        )
        _login(client, "ghost2@example.com", WRONG)
        assert len(hasher_calls) == 1
        assert hasher_calls[0].startswith("$argon2id$")


def test_success_clears_the_counters_and_back_off_doubles(tmp_path: Path) -> None:
    # Seconds, not fractions: the lock must still hold when the next request arrives on a loaded machine.
    with app_client(tmp_path, login_lockout_base_s=2) as client:
        email, _ = new_user(client)
        for _ in range(4):
            _login(client, email, WRONG)
        assert _login(client, email, PASSWORD).status_code == 200
        for _ in range(4):  # counting starts again from zero
            assert _login(client, email, WRONG).status_code == 401
        assert _login(client, email, WRONG).status_code == 401  # the 5th failure locks
        assert _login(client, email, PASSWORD).status_code == 429
        time.sleep(2.2)
        assert _login(client, email, PASSWORD).status_code == 200


def test_backoff_is_exponential_and_capped(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, login_lockout_base_s=2, login_lockout_max_s=60)
    throttle = LoginThrottle(session=None, settings=settings, key=b"k")  # type: ignore[arg-type]
    assert [throttle.lockout_s(n) for n in range(7)] == [2, 4, 8, 16, 32, 60, 60]
    assert throttle.lockout_s(10_000) == 60


def test_failures_are_audited(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        email, _ = new_user(client, role="admin")
        _login(client, email, WRONG)
        token = _login(client, email, PASSWORD).json()["access_token"]
        events = client.get(
            "/api/v1/audit-events", params={"action": "auth.login"}, headers={"Authorization": f"Bearer {token}"}
        )
        outcomes = [e["outcome"] for e in events.json()["items"]]
        assert outcomes == ["success", "failure"]

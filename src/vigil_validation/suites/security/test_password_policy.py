"""Password policy (NIST SP 800-63B): length is the rule (the server's minimum, up to at least 64, any Unicode),
no composition rules, common and breached passwords and ones containing the account name are refused."""

from __future__ import annotations

import uuid

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import API, Recorder, record_attack

MINIMUM = 15  # the server's default (VIGIL_PASSWORD_MIN_LENGTH); the suite's own test password is longer


def _create(admin: VigilClient, password: str, email: str | None = None) -> tuple[int, str]:
    email = email or f"pw-{uuid.uuid4().hex[:10]}@validation.example.com"
    response = admin.send("POST", f"{API}/users", json={"email": email, "password": password, "role": "viewer"})
    if response.status_code != 201:
        assert_problem(response, response.status_code)
    return response.status_code, email


def test_accepted_passwords(tenant: ProvisionedTenant, anonymous: VigilClient, record: Recorder) -> None:
    for name, password in (
        ("exactly-the-minimum", "k7#vq mzt2 p9wx"[:MINIMUM]),
        ("all-lowercase-no-composition", "plainlowercasepassphrase"),
        ("64-characters", "the quick brown fox jumps over the lazy dog and keeps on running!"[:64]),
        ("200-characters", ("a long passphrase made of words " * 7)[:200]),
        ("unicode-and-emoji", "ünïcödé pässwörd 🔐 日本語 ok"),
        ("spaces-inside", "spaces   are   fine   here"),
    ):
        status, email = _create(tenant.admin, password)
        assert status == 201, name
        login = anonymous.send("POST", f"{API}/auth/token", json={"email": email, "password": password})
        assert login.status_code == 200, name
        record(f"password:accepted:{name}", status, "HTTP status")


def test_refused_passwords(tenant: ProvisionedTenant, record: Recorder) -> None:
    email = f"margaret-{uuid.uuid4().hex[:6]}@validation.example.com"
    local = email.split("@", 1)[0]
    for name, password in (
        ("one-below-the-minimum", "k7#vq mzt2 p9wx"[: MINIMUM - 1]),
        ("empty", ""),
        ("common-passwordpassword", "passwordpassword"),
        ("common-with-capitals", "PasswordPassword"),
        ("common-phrase", "correct horse battery staple"),
        ("repeated-character", "zzzzzzzzzzzzzzzzzzzz"),
        ("sequence", "abcdefghijklmnopqr"),
        ("contains-the-email", f"my login is {email}"),
        ("contains-the-name-part", f"{local} secret words"),
        ("beyond-the-maximum", "x y z " * 200),
    ):
        status, _ = _create(tenant.admin, password, email)
        assert status == 422, (name, status)
        record_attack(record, "password-policy", name, status)
    # Nothing was created by any refusal.
    users = [u["email"] for u in tenant.admin.send("GET", f"{API}/users", params={"limit": 500}).json()["items"]]
    assert email not in users

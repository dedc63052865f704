"""Login brute force: failures lock the account from the attacking address with exponential back-off, the lock
answers the same for accounts that exist and ones that do not, and the legitimate user elsewhere is not locked
out by another address's failures (up to the documented account-wide threshold)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import (
    TEST_NETS,
    Recorder,
    forwarded_for_is_trusted,
    login_status,
    new_user,
    record_attack,
)

WRONG = "definitely not the right passphrase"
MAX_ATTEMPTS = 30  # far beyond any sane per-account threshold


def _hammer(anonymous: VigilClient, email: str, ip: str | None = None) -> tuple[int, list[int], dict[str, Any]]:
    """Wrong passwords until the server locks; returns how many failures that took, every status seen and the
    lock-out problem."""
    statuses: list[int] = []
    for _ in range(MAX_ATTEMPTS):
        response = login_status(anonymous, email, WRONG, ip)
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert_problem(response, 429, "locked-out")
            assert int(response.headers["Retry-After"]) >= 1
            return len(statuses) - 1, statuses, response.json()
        assert_problem(response, 401)
    raise AssertionError(f"no lock-out after {MAX_ATTEMPTS} failed logins")


@pytest.mark.smoke
def test_lockout_is_reached_and_holds_even_for_the_right_password(
    tenant: ProvisionedTenant,
    admin: VigilClient,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    password = validation_config.security.password
    victim = new_user(admin, tenant.id, password)
    failures, _, _ = _hammer(anonymous, victim)
    record("brute-force:failures-before-lockout", failures, "attempts")
    locked = login_status(anonymous, victim, password)
    assert_problem(locked, 429, "locked-out")
    record_attack(record, "brute-force", "right-password-while-locked", locked)
    # Another account from the same address is not affected.
    assert login_status(anonymous, tenant.emails["viewer"], password).status_code == 200


def test_lockout_does_not_reveal_whether_an_account_exists(
    tenant: ProvisionedTenant,
    admin: VigilClient,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    real = new_user(admin, tenant.id, validation_config.security.password)
    ghost = f"ghost-{uuid.uuid4().hex[:10]}@validation.example.com"
    real_failures, real_statuses, a = _hammer(anonymous, real)
    ghost_failures, ghost_statuses, b = _hammer(anonymous, ghost)
    assert (real_failures, real_statuses) == (ghost_failures, ghost_statuses)
    # The lock-out answers compared are the ones each hammering ended with: asking again later would race the
    # lock's first back-off (seconds) on a slow machine.
    assert (a["type"], a["title"], a["detail"]) == (b["type"], b["title"], b["detail"])
    record("attack:brute-force:enumeration-through-lockout", 0, "differences")


def test_the_owner_elsewhere_is_not_locked_out_by_an_attacker(
    tenant: ProvisionedTenant,
    admin: VigilClient,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    record: Recorder,
) -> None:
    password = validation_config.security.password
    if not forwarded_for_is_trusted(anonymous, tenant.emails["viewer"], password):
        pytest.skip(
            "needs distinct client addresses: the target does not believe X-Forwarded-For from the suite "
            '(managed target: set VIGIL_TRUSTED_PROXIES=["127.0.0.1/32"])'
        )
    victim = new_user(admin, tenant.id, password)
    attacker, owner = f"{TEST_NETS[1]}.{uuid.uuid4().int % 200 + 20}", f"{TEST_NETS[2]}.{uuid.uuid4().int % 200 + 20}"
    failures, _, _ = _hammer(anonymous, victim, attacker)
    record("brute-force:failures-before-lockout-per-address", failures, "attempts")
    from_owner = login_status(anonymous, victim, password, owner)
    assert from_owner.status_code == 200, from_owner.text
    record_attack(record, "brute-force", "legit-user-other-address-after-attack", from_owner)
    still_locked = login_status(anonymous, victim, password, attacker)
    assert_problem(still_locked, 429, "locked-out")

"""Login brute-force protection: failure counters per account-and-address, per account and per address, each
locking out with exponential back-off once past its threshold.

The policy, in `Settings`: `login_max_failures_per_account_ip` failures of one account from one address lock that
pair (others' logins to the account are unaffected); `login_max_failures_per_account` failures from anywhere lock
the account; `login_max_failures_per_ip` failures on any accounts lock the address. Each lock lasts
`login_lockout_base_s · 2^(failures − threshold)`, at most `login_lockout_max_s`; failures older than
`login_failure_window_s` are forgotten, and a successful login clears the account's counters.

Subjects are keyed hashes of the email as typed, whether or not an account has it, so a lock-out reveals nothing
about which accounts exist.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from vigil.config import Settings
from vigil.core.database import utcnow
from vigil.core.errors import LockedOut
from vigil.identity.models import LoginFailure
from vigil.identity.repository import LoginFailureRepository

LOCKED_OUT = "Too many failed logins; try again later."


@dataclass(frozen=True, slots=True)
class _Subject:
    key: str
    threshold: int


class LoginThrottle:
    def __init__(self, *, session: Session, settings: Settings, key: bytes) -> None:
        self.failures = LoginFailureRepository(session=session)
        self.settings = settings
        self.key = key

    def _hash(self, *parts: str) -> str:
        return hmac.new(self.key, "\x00".join(("login-throttle", *parts)).encode(), hashlib.sha256).hexdigest()

    def _subjects(self, email: str, ip: str) -> list[_Subject]:
        s = self.settings
        return [
            _Subject(self._hash("pair", email, ip), s.login_max_failures_per_account_ip),
            _Subject(self._hash("account", email), s.login_max_failures_per_account),
            _Subject(self._hash("ip", ip), s.login_max_failures_per_ip),
        ]

    def check(self, *, email: str, ip: str) -> None:
        """Raises `LockedOut` (429, `Retry-After`) if any of the request's subjects is locked."""
        now = utcnow()
        rows = self.failures.get_many([s.key for s in self._subjects(email, ip)])
        until = max((r.locked_until for r in rows.values() if r.locked_until and r.locked_until > now), default=None)
        if until is not None:
            raise LockedOut(LOCKED_OUT, retry_after_s=max(1, math.ceil((until - now).total_seconds())))

    def record_failure(self, *, email: str, ip: str) -> None:
        now = utcnow()
        window = timedelta(seconds=self.settings.login_failure_window_s)
        subjects = self._subjects(email, ip)
        rows = self.failures.get_many([s.key for s in subjects])
        for subject in subjects:
            row = rows.get(subject.key)
            if row is None:
                row = LoginFailure(subject=subject.key, failures=0, last_failure_at=now, locked_until=None)
                self.failures.add(row)
            elif now - row.last_failure_at > window:
                row.failures = 0
            row.failures += 1
            row.last_failure_at = now
            if row.failures >= subject.threshold:
                row.locked_until = now + timedelta(seconds=self.lockout_s(row.failures - subject.threshold))

    def lockout_s(self, beyond: int) -> float:
        """How long the lock lasts `beyond` failures past the threshold: doubling, capped."""
        s = self.settings
        return float(min(s.login_lockout_max_s, s.login_lockout_base_s * 2 ** min(beyond, 32)))

    def clear_account(self, *, email: str) -> None:
        """Lifts the account's own lock-out (a password reset by the operator); address locks stay."""
        _, account, _ = self._subjects(email, "")
        self.failures.clear([account.key])

    def record_success(self, *, email: str, ip: str) -> None:
        pair, account, _ = self._subjects(email, ip)
        self.failures.clear([pair.key, account.key])

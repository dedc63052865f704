"""Passwords: argon2id hashing and the NIST SP 800-63B policy (length, blocklist, no composition rules)."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from importlib import resources
from itertools import pairwise

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from vigil.config import Settings

MAX_PASSWORD_LENGTH = 256
_WORD_SPLIT = re.compile(r"[\W_]+")


@cache
def _blocklist() -> frozenset[str]:
    text = resources.files("vigil.identity").joinpath("common_passwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().casefold() for line in text.splitlines() if line.strip())


def _is_repetitive_or_sequential(password: str) -> bool:
    """One short unit repeated ("abababab…", "zzzz…") or a straight run ("abcdefgh…", "98765…"): the patterns
    NIST SP 800-63B names alongside the blocklist."""
    compact = password.replace(" ", "")
    if len(compact) < 2:
        return False
    for unit in range(1, 5):
        if len(compact) >= 2 * unit and compact == (compact[:unit] * (len(compact) // unit + 1))[: len(compact)]:
            return True
    steps = {ord(b) - ord(a) for a, b in pairwise(compact)}
    return len(steps) == 1 and steps <= {-1, 1}


def _contains_account_name(password: str, email: str) -> bool:
    """The whole address, or its name part as a word of its own ("ana" is in "ana 2024…", not in "analyst")."""
    local = email.split("@", 1)[0]
    words = set(_WORD_SPLIT.split(password))
    # A long name part is the account name wherever it appears; a short one only as a word of its own.
    return email in password or (len(local) >= 3 and local in words) or (len(local) >= 6 and local in password)


class Passwords:
    def __init__(self, settings: Settings) -> None:
        self.min_length = settings.password_min_length
        self.hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        # Verified against when the email is unknown, so both paths cost the same time.
        self._dummy_hash = self.hasher.hash("vigil-timing-equaliser")

    def policy_violations(self, password: str, *, email: str | None = None) -> list[str]:
        normalised = unicodedata.normalize("NFKC", password)
        problems = []
        if len(normalised) < self.min_length:
            problems.append(f"must be at least {self.min_length} characters")
        if len(normalised) > MAX_PASSWORD_LENGTH:
            problems.append(f"must be at most {MAX_PASSWORD_LENGTH} characters")
        folded = normalised.casefold()
        if folded in _blocklist() or folded.replace(" ", "") in _blocklist() or _is_repetitive_or_sequential(folded):
            problems.append("is a commonly used password")
        if email and _contains_account_name(normalised.casefold(), email.casefold()):
            problems.append("must not contain the email address or its name part")
        return problems

    def hash(self, password: str) -> str:
        return self.hasher.hash(unicodedata.normalize("NFKC", password))

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self.hasher.verify(password_hash or self._dummy_hash, unicodedata.normalize("NFKC", password)) and (
                password_hash is not None
            )
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

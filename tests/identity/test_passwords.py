"""Password policy (NIST SP 800-63B: length, blocklist, no composition rules) and argon2id hashing."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import make_settings
from vigil.identity.passwords import Passwords


def passwords(tmp_path: Path) -> Passwords:
    return Passwords(make_settings(tmp_path))


def test_length_is_the_rule_not_composition(tmp_path: Path) -> None:
    policy = passwords(tmp_path)
    assert policy.policy_violations("alllowercaseletters") == []
    assert policy.policy_violations("ünïcödé pässwörd ✓✓") == []
    assert policy.policy_violations("short") == ["must be at least 15 characters"]
    assert policy.policy_violations("long passphrase " * 20) == ["must be at most 256 characters"]


def test_blocklist_and_email(tmp_path: Path) -> None:
    policy = passwords(tmp_path)
    assert "is a commonly used password" in policy.policy_violations("PasswordPassword")
    refused = "must not contain the email address or its name part"
    assert refused in policy.policy_violations("margaret-is-my-name!", email="margaret@x.org")
    assert refused in policy.policy_violations("my login is ana@acme.example", email="ana@acme.example")
    # A short name inside a longer word is a coincidence, not the account name.
    assert policy.policy_violations("a long analyst passphrase", email="ana@acme.example") == []


def test_hash_is_argon2id_and_verifies(tmp_path: Path) -> None:
    policy = passwords(tmp_path)
    hashed = policy.hash("a fine long passphrase")
    assert hashed.startswith("$argon2id$")
    assert policy.verify(hashed, "a fine long passphrase")
    assert not policy.verify(hashed, "a fine long passphrasE")
    assert not policy.verify(None, "anything")
    assert not policy.verify("not-a-hash", "anything")


def test_repetition_sequences_and_the_bundled_list(tmp_path: Path) -> None:
    policy = passwords(tmp_path)
    common = "is a commonly used password"
    for weak in ("zzzzzzzzzzzzzzzz", "abababababababab", "abcabcabcabcabcabc", "abcdefghijklmnopq", "zyxwvutsrqponmlk"):
        assert common in policy.policy_violations(weak), weak
    assert common in policy.policy_violations("Correct Horse Battery Staple")
    assert common in policy.policy_violations("iloveyou12345678")
    assert policy.policy_violations("a 64 character passphrase " + "é" * 38) == []
    assert policy.policy_violations("🔒🔑 emoji and ünïcode are fine") == []

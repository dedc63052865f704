"""JWT attacks (RFC 8725): `alg: none`, HS/RS confusion, tampered payloads, foreign keys, and — with the
target's signing key — every claim check on its own (expired, not yet valid, wrong `aud`/`iss`, missing `jti`).
A real expiry is proven black-box too: a tenant's access-token lifetime set to one second."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem, eventually
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant
from vigil_validation.suites.security.attacks import (
    API,
    SIGNING_KEY_ENV,
    Recorder,
    b64,
    bearer,
    claims_of,
    header_of,
    login_pair,
    make_jwt,
    record_attack,
    signing_key,
)


def _refused(anonymous: VigilClient, token: str, *, within_s: float = 0.0) -> Any:
    """401 for `token` — within `within_s` (the target's staleness bound) where a change made it invalid."""
    response = eventually(
        lambda: anonymous.send("GET", f"{API}/me", headers=bearer(token), authenticated=False),
        lambda r: r.status_code == 401,
        within_s=within_s,
    )
    assert_problem(response, 401)
    return response


def unsigned_attacks(real: str) -> dict[str, str]:
    """Tokens anyone can make from a real one, without any key."""
    header, payload, signature = real.split(".")
    claims = claims_of(real)
    escalated = {**claims, "role": "superadmin", "exp": int(time.time()) + 3600}
    other_tenant = {**claims, "tid": "tnt_" + "0" * 26}
    typ = header_of(real).get("typ", "JWT")

    def segment(value: dict[str, Any]) -> str:
        return b64(json.dumps(value).encode())

    flipped = signature[:-3] + ("AAA" if not signature.endswith("AAA") else "BBB")
    jwk_key = b"k" * 32
    return {
        "alg-none": make_jwt({"alg": "none", "typ": typ}, escalated, None).rsplit(".", 1)[0] + ".",
        "alg-None-empty-signature": make_jwt({"alg": "None", "typ": typ}, escalated, None),
        "alg-none-original-signature": f"{segment({'alg': 'none'})}.{payload}.{signature}",
        "hs-rs-confusion-RS256-header": f"{segment({'alg': 'RS256', 'typ': typ})}.{payload}.{signature}",
        "hs-rs-confusion-ES256-header": f"{segment({'alg': 'ES256', 'typ': typ})}.{payload}.{signature}",
        "tampered-payload-role": f"{header}.{segment(escalated)}.{signature}",
        "tampered-payload-tenant": f"{header}.{segment(other_tenant)}.{signature}",
        "wrong-signature-key": make_jwt(header_of(real), escalated, secrets.token_bytes(32)),
        "flipped-signature": f"{header}.{payload}.{flipped}",
        "stripped-signature": f"{header}.{payload}.",
        "embedded-jwk-header": make_jwt(
            {**header_of(real), "jwk": {"kty": "oct", "k": b64(jwk_key)}}, escalated, jwk_key
        ),
        "kid-path-traversal": make_jwt({**header_of(real), "kid": "../../../../dev/null"}, escalated, b""),
        "garbage": "not.a.jwt",
        "empty-parts": "..",
    }


@pytest.mark.smoke
def test_unsigned_and_foreign_tokens_are_refused(
    tenant: ProvisionedTenant, anonymous: VigilClient, record: Recorder
) -> None:
    real = tenant.viewer.token
    assert real is not None
    assert tenant.viewer.send("GET", f"{API}/me").status_code == 200
    for name, token in unsigned_attacks(real).items():
        try:
            record_attack(record, "jwt", name, _refused(anonymous, token))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from exc


def test_claims_checked_with_a_valid_signature(
    tenant: ProvisionedTenant, anonymous: VigilClient, record: Recorder
) -> None:
    key = signing_key()
    if key is None:
        pytest.skip(
            f"needs the target's signing key to forge validly signed tokens (a managed target shares it; for a remote "
            f"one set {SIGNING_KEY_ENV}); the unsigned attacks are covered without it"
        )
    real = tenant.viewer.token
    assert real is not None
    header, claims, now = header_of(real), claims_of(real), int(time.time())
    # Control: a token made with the key and unchanged claims is accepted, so each refusal below is the claim's.
    control = make_jwt(header, {**claims, "jti": secrets.token_hex(16)}, key)
    assert anonymous.send("GET", f"{API}/me", headers=bearer(control), authenticated=False).status_code == 200
    attacks = {
        "expired": {**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600},
        "not-yet-valid": {**claims, "nbf": now + 3600, "exp": now + 7200},
        "issued-in-the-future": {**claims, "iat": now + 3600},
        "wrong-audience": {**claims, "aud": "another-api"},
        "wrong-issuer": {**claims, "iss": "https://evil.example"},
        "missing-jti": {k: v for k, v in claims.items() if k != "jti"},
        "missing-exp": {k: v for k, v in claims.items() if k != "exp"},
        "missing-session": {k: v for k, v in claims.items() if k != "sid"},
        "role-escalation-validly-signed": {**claims, "role": "superadmin"},  # the role comes from the database
    }
    for name, forged in attacks.items():
        token = make_jwt(header, forged, key)
        response = anonymous.send("GET", f"{API}/me", headers=bearer(token), authenticated=False)
        if name == "role-escalation-validly-signed":
            assert response.status_code == 200, response.text
            assert response.json()["role"] == "viewer"
            assert_problem(anonymous.send("GET", f"{API}/tenants", headers=bearer(token), authenticated=False), 403)
        else:
            assert_problem(response, 401)
        record_attack(record, "jwt", name, response)
    other_algorithms = (("alg-HS512-with-the-key", "HS512", "sha512"), ("alg-HS384-with-the-key", "HS384", "sha384"))
    for name, alg, digest in other_algorithms:
        token = make_jwt({**header, "alg": alg}, claims, key, digest=digest)
        record_attack(record, "jwt", name, _refused(anonymous, token))


def test_token_after_logout_is_refused(
    tenant: ProvisionedTenant,
    anonymous: VigilClient,
    validation_config: ValidationConfig,
    record: Recorder,
    staleness_bound: float,
) -> None:
    pair = login_pair(anonymous, tenant.emails["analyst"], validation_config.security.password)
    assert anonymous.send("POST", f"{API}/auth/logout", headers=bearer(pair["access_token"])).status_code == 204
    refused = _refused(anonymous, pair["access_token"], within_s=staleness_bound)
    record_attack(record, "jwt", "token-after-logout", refused)
    refresh = anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_problem(refresh, 401)
    record_attack(record, "jwt", "refresh-after-logout", refresh)
    assert tenant.analyst.send("GET", f"{API}/me").status_code == 200  # the fixture's own session lives on


def test_a_really_expired_token_is_refused(
    tenant: ProvisionedTenant, anonymous: VigilClient, validation_config: ValidationConfig, record: Recorder
) -> None:
    """The tenant admin shortens access tokens to one second; the token then dies (within the clock leeway)."""
    tightened = tenant.admin.send("PATCH", f"{API}/tenant/security", json={"access_token_ttl_s": 1})
    assert tightened.status_code == 200, tightened.text
    pair = login_pair(anonymous, tenant.emails["viewer"], validation_config.security.password)
    assert pair["expires_in"] == 1
    assert anonymous.send("GET", f"{API}/me", headers=bearer(pair["access_token"])).status_code == 200
    deadline = time.monotonic() + 30
    while anonymous.send("GET", f"{API}/me", headers=bearer(pair["access_token"])).status_code == 200:
        assert time.monotonic() < deadline, "the access token was still accepted 30 s after it expired"
        time.sleep(0.5)
    record_attack(record, "jwt", "expired-for-real", _refused(anonymous, pair["access_token"]))
    # The refresh token still works: expiry of the access token is the normal life of a session.
    fresh = anonymous.send("POST", f"{API}/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert fresh.status_code == 200, fresh.text

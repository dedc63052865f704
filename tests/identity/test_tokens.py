"""Access tokens (RFC 8725): one pinned algorithm, every claim checked, tied to a live session; refresh tokens
rotate on every use, and a reused one revokes its whole family."""

from __future__ import annotations

import base64
import json
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, bearer
from tests.identity.conftest import app_client, new_user, tokens
from vigil.core.secrets import ACCESS_TOKENS, derive_key

# The server signs access tokens with a key derived from its secret (the test settings' secret_key), not the secret.
KEY = derive_key(b"test-secret-key-that-is-long-enough-0123456789", ACCESS_TOKENS)


def _claims(access: str) -> dict[str, Any]:
    return dict(jwt.decode(access, options={"verify_signature": False}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(claims: dict[str, Any], *, key: str | bytes = KEY, alg: str = "HS256", typ: str = "at+jwt") -> str:
    with warnings.catch_warnings():  # a short key for HS512 is the attacker's problem
        warnings.simplefilter("ignore")
        return jwt.encode(claims, key, algorithm=alg, headers={"typ": typ})


def _attacks(real: str) -> dict[str, str]:
    claims = _claims(real)
    now = int(time.time())
    unsigned = f"{_b64(json.dumps({'alg': 'none', 'typ': 'at+jwt'}).encode())}.{_b64(json.dumps(claims).encode())}."
    header, payload, signature = real.split(".")
    escalated = _b64(json.dumps({**claims, "role": "superadmin"}).encode())
    rs_header = _b64(json.dumps({"alg": "RS256", "typ": "at+jwt"}).encode())
    return {
        "alg none": unsigned,
        "alg HS512 with the real key": _forge(claims, alg="HS512"),
        "alg RS256 header (HS/RS confusion)": f"{rs_header}.{payload}.{signature}",
        "tampered payload": f"{header}.{escalated}.{signature}",
        "wrong key": _forge(claims, key="another-key-that-is-also-long-enough-000"),
        "expired": _forge({**claims, "iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}),
        "not yet valid": _forge({**claims, "nbf": now + 3600, "exp": now + 7200}),
        "wrong audience": _forge({**claims, "aud": "someone-else"}),
        "wrong issuer": _forge({**claims, "iss": "evil"}),
        "missing jti": _forge({k: v for k, v in claims.items() if k != "jti"}),
        "missing sid": _forge({k: v for k, v in claims.items() if k != "sid"}),
        "unknown session": _forge({**claims, "sid": "ses_0000000000000000000000000"}),
        "another user's subject": _forge({**claims, "sub": "usr_0000000000000000000000000"}),
        "not an access token (typ JWT)": _forge(claims, typ="JWT"),
        "non-string claims": _forge({**claims, "sub": {"$ne": None}}),
    }


def test_token_has_the_claims_and_lifetime(client: TestClient, user_factory: Callable[..., tuple[str, str]]) -> None:
    email, user_id = user_factory("viewer")
    pair = tokens(client, email, PASSWORD)
    assert pair["refresh_token"].startswith("vrt_")
    claims = _claims(pair["access_token"])
    assert {"iss", "aud", "exp", "iat", "nbf", "jti", "sub", "tid", "role", "sid"} <= claims.keys()
    assert (claims["sub"], claims["role"], claims["iss"], claims["aud"]) == (user_id, "viewer", "vigil", "vigil-api")
    assert claims["exp"] - claims["iat"] == pair["expires_in"] == 900
    assert jwt.get_unverified_header(pair["access_token"]) == {"alg": "HS256", "typ": "at+jwt"}


def test_forged_and_invalid_tokens_are_refused(
    client: TestClient, user_factory: Callable[..., tuple[str, str]]
) -> None:
    email, _ = user_factory("viewer")
    real = tokens(client, email, PASSWORD)["access_token"]
    assert client.get("/api/v1/me", headers=bearer(real)).status_code == 200
    for name, forged in _attacks(real).items():
        response = client.get("/api/v1/me", headers=bearer(forged))
        assert response.status_code == 401, f"{name}: {response.status_code} {response.text}"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"] == "Bearer"


def test_logout_revokes_the_session_and_its_tokens(
    client: TestClient, user_factory: Callable[..., tuple[str, str]]
) -> None:
    email, _ = user_factory()
    first, second = tokens(client, email, PASSWORD), tokens(client, email, PASSWORD)
    assert client.post("/api/v1/auth/logout", headers=bearer(first["access_token"])).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(first["access_token"])).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert refreshed.status_code == 401
    # The user's other session is untouched.
    assert client.get("/api/v1/me", headers=bearer(second["access_token"])).status_code == 200


def test_refresh_rotates_and_reuse_revokes_the_family(
    client: TestClient, user_factory: Callable[..., tuple[str, str]]
) -> None:
    email, _ = user_factory()
    first = tokens(client, email, PASSWORD)
    second = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert _claims(second["access_token"])["sid"] == _claims(first["access_token"])["sid"]
    third = client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}).json()
    assert client.get("/api/v1/me", headers=bearer(third["access_token"])).status_code == 200

    # The thief replays a spent token: refused, and every token of that session dies with it.
    reuse = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert reuse.status_code == 401
    assert client.get("/api/v1/me", headers=bearer(third["access_token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}).status_code == 401


def test_refresh_refuses_garbage(client: TestClient) -> None:
    for body in ({"refresh_token": "vrt_nope"}, {"refresh_token": ""}, {"refresh_token": "x", "extra": 1}, {}):
        response = client.post("/api/v1/auth/refresh", json=body)
        assert response.status_code in (401, 422), response.text


def test_an_expired_access_token_is_refused_and_refresh_recovers(tmp_path: Path) -> None:
    with app_client(tmp_path, jwt_leeway_s=0) as client:
        email, _ = new_user(client, role="admin")
        admin = bearer(tokens(client, email, PASSWORD)["access_token"])
        # The tenant's own, shorter lifetime: only this tenant's new tokens live one second.
        tightened = client.patch("/api/v1/tenant/security", json={"access_token_ttl_s": 1}, headers=admin)
        assert tightened.status_code == 200, tightened.text
        pair = tokens(client, email, PASSWORD)
        assert pair["expires_in"] == 1
        deadline = time.monotonic() + 10
        while client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 200:
            assert time.monotonic() < deadline, "the access token never expired"
            time.sleep(0.2)
        response = client.get("/api/v1/me", headers=bearer(pair["access_token"]))
        assert response.status_code == 401
        assert "expired" in response.json()["detail"]
        # The refresh token outlives the access token: with the lifetime relaxed again, it brings a working pair.
        relaxed = client.patch("/api/v1/tenant/security", json={"access_token_ttl_s": 600}, headers=admin)
        assert relaxed.status_code == 200, relaxed.text
        fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
        assert fresh["expires_in"] == 600
        assert client.get("/api/v1/me", headers=bearer(fresh["access_token"])).status_code == 200


@pytest.mark.parametrize("offset", [timedelta(hours=1), timedelta(hours=-1)])
def test_iat_far_from_now_is_refused_only_in_the_future(
    client: TestClient, user_factory: Callable[..., tuple[str, str]], offset: timedelta
) -> None:
    email, _ = user_factory()
    claims = _claims(tokens(client, email, PASSWORD)["access_token"])
    claims["iat"] = int((datetime.now(UTC) + offset).timestamp())
    status = client.get("/api/v1/me", headers=bearer(_forge(claims))).status_code
    assert status == (401 if offset > timedelta(0) else 200)

"""What the attack modules share: logging in for a token pair, new users and API keys, forging JWTs, and
recording each attack's outcome for the report (`attack:<family>:<name>` = the HTTP status it got)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from vigil.client import VigilClient
from vigil_validation import handover

API = "/api/v1"
# The target's signing key (a managed target shares its own; for a remote one an operator may set this variable):
# needed to forge tokens whose *signature* is valid, so that the server's claim checks (exp, nbf, aud, iss, jti,
# algorithm pinning) are what refuses them.
SIGNING_KEY_ENV = "VIGIL_VALIDATION_JWT_SECRET"
# Set when the target believes X-Forwarded-For from the suite (VIGIL_TRUSTED_PROXIES=127.0.0.1/32 on a managed one).
TEST_NETS = ("198.51.100", "203.0.113", "192.0.2")

Recorder = Callable[..., None]


def record_attack(record: Recorder, family: str, name: str, response: httpx.Response | int) -> None:
    status = response if isinstance(response, int) else response.status_code
    record(f"attack:{family}:{name}", status, "HTTP status")


def signing_key() -> bytes | None:
    """The key that signs the target's access tokens: derived from its secret as the server derives it
    (HKDF-SHA256, RFC 5869, info `vigil/access-tokens/v1` — documented in docs/architecture.md, Secrets)."""
    value = handover.target_from_env().signing_key or os.environ.get(SIGNING_KEY_ENV)
    if not value:
        return None
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"vigil/access-tokens/v1").derive(value.encode())


def login_pair(anonymous: VigilClient, email: str, password: str, **headers: str) -> dict[str, Any]:
    """Logs in without touching the client's credentials; returns the whole answer (access and refresh token)."""
    response = anonymous.send(
        "POST", f"{API}/auth/token", json={"email": email, "password": password}, headers=headers, authenticated=False
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def login_status(anonymous: VigilClient, email: str, password: str, ip: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": ip} if ip else {}
    return anonymous.send(
        "POST", f"{API}/auth/token", json={"email": email, "password": password}, headers=headers, authenticated=False
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(admin: VigilClient, tenant_id: str, password: str, role: str = "analyst") -> str:
    email = f"{role}-{uuid.uuid4().hex[:10]}@validation.example.com"
    admin.create_user(email, password, role=role, tenant_id=tenant_id)
    return email


def forwarded_for_is_trusted(anonymous: VigilClient, email: str, password: str) -> bool:
    """Whether the target takes the client address from X-Forwarded-For (its sessions show the address)."""
    address = f"{TEST_NETS[0]}.{uuid.uuid4().int % 200 + 20}"
    pair = login_pair(anonymous, email, password, **{"X-Forwarded-For": address})
    sessions = anonymous.send("GET", f"{API}/auth/sessions", headers=bearer(pair["access_token"]))
    return any(s.get("ip") == address for s in sessions.json().get("items", []))


# -- JWTs, made by hand (the suite has no JWT library of its own to trust) ---------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = json.loads(unb64(token.split(".", 2)[1]))
    return claims


def header_of(token: str) -> dict[str, Any]:
    header: dict[str, Any] = json.loads(unb64(token.split(".", 1)[0]))
    return header


def make_jwt(header: dict[str, Any], claims: dict[str, Any], key: bytes | None, digest: str = "sha256") -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), getattr(hashlib, digest)).digest() if key is not None else b""
    return f"{signing_input}.{b64(signature)}"

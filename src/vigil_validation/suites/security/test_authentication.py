"""Authentication holds on every route: anonymous calls, garbage and forged tokens are all refused with 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def protected_operations(spec: dict[str, Any], public: list[str]) -> list[tuple[str, str]]:
    """Every (method, path) under /api/v1 in the OpenAPI document but the public ones, path parameters filled."""
    operations = []
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/") or path in public:
            continue
        concrete = "/".join("x" + secrets.token_hex(4) if p.startswith("{") else p for p in path.split("/"))
        operations += [(method.upper(), concrete) for method in HTTP_METHODS if method in item]
    return operations


def test_every_api_route_refuses_anonymous_calls(anonymous: VigilClient, validation_config: ValidationConfig) -> None:
    operations = protected_operations(anonymous.openapi(), validation_config.security.public_paths)
    assert len(operations) >= 10, operations  # the spec is generated from the routes, so it lists them all
    failures = []
    for method, path in operations:
        body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
        response = anonymous.send(method, path, json=body)
        try:
            assert_problem(response, 401)
        except AssertionError as exc:
            failures.append(f"{method} {path}: {exc}")
    assert not failures, "\n".join(failures)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _jwt(header: dict[str, Any], claims: dict[str, Any], key: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest() if key is not None else b""
    return f"{signing_input}.{_b64(signature)}"


def forged_tokens(real: str) -> dict[str, str]:
    """Tokens an attacker could make from a real one: same claims, escalated role, but no valid signature."""
    header_b64, claims_b64, signature_b64 = real.split(".")
    claims = json.loads(_unb64(claims_b64))
    escalated = {**claims, "role": "superadmin", "exp": int(time.time()) + 3600}
    flipped = signature_b64[:-2] + ("AA" if not signature_b64.endswith("AA") else "BB")
    return {
        "alg none": _jwt({"alg": "none", "typ": "JWT"}, escalated, None).rsplit(".", 1)[0] + ".",
        "alg None, no signature part": _jwt({"alg": "None", "typ": "JWT"}, escalated, None),
        "wrong key": _jwt({"alg": "HS256", "typ": "JWT"}, escalated, secrets.token_bytes(32)),
        "tampered claims, original signature": f"{header_b64}.{_b64(json.dumps(escalated).encode())}.{signature_b64}",
        "flipped signature": f"{header_b64}.{claims_b64}.{flipped}",
        "expired, wrong key": _jwt(
            {"alg": "HS256", "typ": "JWT"}, {**claims, "exp": int(time.time()) - 3600}, secrets.token_bytes(32)
        ),
        "truncated": real[: len(real) // 2],
        "garbage": "not.a.jwt",
        "empty parts": "..",
    }


@pytest.mark.smoke
def test_garbage_and_forged_tokens_are_401(tenant: ProvisionedTenant, anonymous: VigilClient) -> None:
    real = tenant.viewer.token
    assert real is not None
    assert tenant.viewer.send("GET", "/api/v1/me").status_code == 200  # the genuine one works
    for name, token in forged_tokens(real).items():
        for method, path in (("GET", "/api/v1/me"), ("GET", "/api/v1/tenants"), ("GET", "/api/v1/datasets")):
            response = anonymous.send(method, path, headers={"Authorization": f"Bearer {token}"})
            try:
                assert_problem(response, 401)
            except AssertionError as exc:
                raise AssertionError(f"{name} token on {method} {path}: {exc}") from exc


def test_other_authorization_schemes_are_401(tenant: ProvisionedTenant, anonymous: VigilClient) -> None:
    token = tenant.viewer.token
    for header in (f"Basic {token}", f"Token {token}", "Bearer", f"Bearer{token}", token or ""):
        assert_problem(anonymous.send("GET", "/api/v1/me", headers={"Authorization": header}), 401)


def test_wrong_password_and_unknown_user_are_refused_alike(tenant: ProvisionedTenant, anonymous: VigilClient) -> None:
    wrong = anonymous.send(
        "POST",
        "/api/v1/auth/token",
        json={"email": tenant.emails["viewer"], "password": "definitely not the password"},
        authenticated=False,
    )
    unknown = anonymous.send(
        "POST",
        "/api/v1/auth/token",
        json={"email": f"nobody-{secrets.token_hex(4)}@example.com", "password": "definitely not the password"},
        authenticated=False,
    )
    first, second = assert_problem(wrong, 401), assert_problem(unknown, 401)
    # The same answer: a login never reveals whether an account exists.
    assert (first["type"], first["title"], first["detail"]) == (second["type"], second["title"], second["detail"])

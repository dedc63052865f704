"""Schemathesis hooks for the contract fuzzing run (`SCHEMATHESIS_HOOKS=vigil_validation.fuzz_hooks`), loaded by
the `schemathesis run` process the contracts suite starts — never by the suite's own pytest session.

- Authentication: the run acts as several admins of one tenant, each request as the next of them in turn. A
  server's rate limit is per user (1,200 a minute by default), so one user would spend most of a fuzzing run
  in 429s; a few admins of the same tenant are what several real clients of one tenant look like. They log in
  themselves (credentials from the environment), so a long run (`--fuzz-examples`) outlives an access token.
- Bodies in Vigil's binary table formats (Parquet, Arrow) are sent as the bytes generated for them: the server
  must answer any bytes in a declared format with a table or a problem, which is the point of fuzzing them."""

from __future__ import annotations

import itertools
import json
import os
import threading
from typing import Any

import httpx
import schemathesis

BASE_URL_ENV = "VIGIL_FUZZ_BASE_URL"
CREDENTIALS_ENV = "VIGIL_FUZZ_CREDENTIALS"  # JSON: [[email, password], …]
FORWARDED_FOR_ENV = "VIGIL_FUZZ_FORWARDED_FOR"  # a client address of the run's own (per-address limits)
TOKEN_LIFETIME_GUESS_S = 600  # logged in again after this long: below the server's default 15 min access tokens
BINARY_MEDIA_TYPES = (
    "application/vnd.apache.parquet",
    "application/x-parquet",
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.arrow.file",
)


def _login_all() -> list[str]:
    base_url = os.environ[BASE_URL_ENV]
    credentials = json.loads(os.environ[CREDENTIALS_ENV])
    tokens = []
    with httpx.Client(base_url=base_url, timeout=30.0, headers=_forwarded()) as http:
        for email, password in credentials:
            response = http.post("/api/v1/auth/token", json={"email": email, "password": password})
            response.raise_for_status()
            tokens.append(str(response.json()["access_token"]))
    return tokens


def _forwarded() -> dict[str, str]:
    address = os.environ.get(FORWARDED_FOR_ENV)
    return {"X-Forwarded-For": address} if address else {}


@schemathesis.auth(refresh_interval=TOKEN_LIFETIME_GUESS_S, retry_on=[])
class TenantAdmins:
    """Logs the tenant's admins in (again after `refresh_interval`); each request goes out as the next one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def get(self, case: schemathesis.Case[Any], context: schemathesis.AuthContext) -> list[str]:
        return _login_all()

    def set(self, case: schemathesis.Case[Any], data: list[str], context: schemathesis.AuthContext) -> None:
        with self._lock:
            token = data[next(self._turn) % len(data)]
        case.headers["Authorization"] = f"Bearer {token}"
        case.headers.update(_forwarded())


schemathesis.serializer.alias(list(BINARY_MEDIA_TYPES), "application/octet-stream")

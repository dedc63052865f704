"""`VigilClient`: authentication, the platform's identity routes, health, and the resource namespaces."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Self

import httpx

from vigil.client.errors import VigilAPIError, VigilConnectionError
from vigil.client.jobs import Jobs
from vigil.client.models import Algorithm, DetectionResult, Job, Me, Page, Tenant, Token, User
from vigil.client.resources import ApiKeys, Datasets, Detectors
from vigil.client.retry import RetryPolicy, retryable_error, retryable_status
from vigil.client.streams import Streams
from vigil.client.types import JSON, Params

API = "/api/v1"
USER_AGENT = "vigil-client/0.1"


class VigilClient:
    """A synchronous client of one Vigil deployment. Methods return typed results (`vigil.client.models`, checked
    against the API's OpenAPI document), which also read like the JSON they came from (``job["status"]``);
    `call` is the raw way, answering plain JSON.

    Errors: a non-2xx answer raises `VigilAPIError` (status and problem document), a network failure raises
    `VigilConnectionError`. Credentials: `token` (a JWT from `login`) or `api_key`; `login` replaces either.

    Retries (`retry`, `vigil.client.retry`): a refused connection, a 429, and — for idempotent requests and POSTs,
    to which the client adds an `Idempotency-Key` of its own — a lost answer or a 502/503/504 are tried again,
    after exponential backoff with jitter or the server's `Retry-After`. `retry=NO_RETRY` turns that off (a
    caller that wants to see every answer as it comes, like the validation suite).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._transport = transport
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport, headers={"User-Agent": USER_AGENT}
        )
        self.token = token
        self.refresh_token: str | None = None
        self.api_key = api_key
        self.datasets = Datasets(self)
        self.detectors = Detectors(self)
        self.jobs = Jobs(self)
        self.streams = Streams(self)
        self.api_keys = ApiKeys(self)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def with_token(self, token: str | None) -> VigilClient:
        """Another client of the same deployment with other credentials (and its own connection pool, unless a
        transport was given: that one is shared)."""
        return VigilClient(
            self.base_url, token=token, timeout=self._timeout_s, transport=self._transport, retry=self.retry
        )

    @property
    def _timeout_s(self) -> float:
        read = self._http.timeout.read
        return read if read is not None else 30.0

    # -- raw requests -------------------------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.api_key:
            return {"X-API-Key": self.api_key}
        return {}

    def send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        authenticated: bool = True,
        repeatable: bool = False,
    ) -> httpx.Response:
        """One HTTP request, returning the response whatever its status (for callers that inspect errors) once
        the retry policy has given up trying again. `repeatable`: the request is idempotent by its own content (a
        stream's events, by seq), so it is retried like a keyed one without an `Idempotency-Key` the server would
        have to store."""
        merged = {**(self.auth_headers() if authenticated else {}), **(headers or {})}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        keyed = repeatable or any(name.lower() == "idempotency-key" for name in merged)
        if not keyed and method.upper() == "POST" and self.retry.attempts > 1 and not path.startswith(f"{API}/auth/"):
            # Made once for all the tries of this call: a retried POST is answered with the first one's result.
            merged["Idempotency-Key"] = f"sdk-{uuid.uuid4().hex}"
            keyed = True
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, json=json, content=content, params=clean, headers=merged)
            except httpx.TransportError as exc:
                wait = self.retry.wait_s(attempt) if retryable_error(exc, method, keyed=keyed) else None
                if wait is None:
                    raise VigilConnectionError(f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}") from exc
            else:
                if not retryable_status(response.status_code, method, keyed=keyed):
                    return response
                wait = self.retry.wait_s(attempt, response.headers.get("retry-after"))
                if wait is None:
                    return response
                response.close()
            time.sleep(wait)
            attempt += 1

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        authenticated: bool = True,
        repeatable: bool = False,
    ) -> httpx.Response:
        """One request that must succeed: a non-2xx answer raises `VigilAPIError`."""
        extra = dict(headers or {})
        if idempotency_key is not None:
            extra["Idempotency-Key"] = idempotency_key
        options: dict[str, Any] = {"authenticated": authenticated, "repeatable": repeatable}
        response = self.send(method, path, json=json, content=content, params=params, headers=extra, **options)
        if response.status_code == 401 and authenticated and self.refresh_token and not path.startswith(f"{API}/auth/"):
            # The access token expired mid-work (they live minutes): rotate the pair once and try again.
            self.refresh()
            response = self.send(method, path, json=json, content=content, params=params, headers=extra, **options)
        if response.is_error:
            raise VigilAPIError.from_response(response)
        return response

    @contextmanager
    def open_stream(self, path: str, *, params: Params | None = None) -> Iterator[httpx.Response]:
        """A GET whose answer is read as it comes (server-sent events): the open response, once its status said
        yes; an error status raises `VigilAPIError`, a failed or cut connection `VigilConnectionError`."""
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        for attempt in range(2):
            headers = {**self.auth_headers(), "Accept": "text/event-stream"}
            try:
                with self._http.stream("GET", path, params=clean, headers=headers) as response:
                    if response.status_code == 401 and attempt == 0 and self.refresh_token:
                        self.refresh()  # the access token expired: rotate the pair and open the stream again
                        continue
                    if response.is_error:
                        response.read()
                        raise VigilAPIError.from_response(response)
                    yield response
                    return
            except httpx.TransportError as exc:
                raise VigilConnectionError(f"GET {self.base_url}{path}: {type(exc).__name__}: {exc}") from exc

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        params: Params | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        repeatable: bool = False,
    ) -> JSON:
        """A request whose answer is a JSON object (or nothing, for 204: then ``{}``)."""
        response = self.request(
            method,
            path,
            json=json,
            content=content,
            params=params,
            headers=headers,
            idempotency_key=idempotency_key,
            repeatable=repeatable,
        )
        if response.status_code == 204 or not response.content:
            return {}
        body = response.json()
        if not isinstance(body, dict):
            raise VigilAPIError(response.status_code, {"detail": "expected a JSON object"}, headers=response.headers)
        return body

    # -- operations ---------------------------------------------------------------------------------------
    def health(self) -> JSON:
        """`GET /health`: liveness."""
        return self.call("GET", "/health")

    def ready(self) -> JSON:
        """`GET /ready`: readiness (raises `VigilAPIError` 503 when a dependency is down)."""
        return self.call("GET", "/ready")

    def openapi(self) -> JSON:
        return self.call("GET", "/openapi.json")

    # -- authentication -----------------------------------------------------------------------------------
    def login(self, email: str, password: str) -> Token:
        """Exchanges email and password for tokens and keeps the access token for the next calls."""
        tokens = Token.model_validate(
            self.call("POST", f"{API}/auth/token", json={"email": email, "password": password})
        )
        self._keep(tokens)
        return tokens

    def refresh(self) -> Token:
        """Rotates the token pair: the refresh token is single-use, so the new one replaces it."""
        if not self.refresh_token:
            raise ValueError("no refresh token: log in first")
        tokens = Token.model_validate(
            self.call("POST", f"{API}/auth/refresh", json={"refresh_token": self.refresh_token})
        )
        self._keep(tokens)
        return tokens

    def logout(self) -> None:
        """Ends this login's session on the server; the tokens stop working at once."""
        self.call("POST", f"{API}/auth/logout")
        self.token = self.refresh_token = None

    def _keep(self, tokens: Token) -> None:
        self.token = tokens.access_token
        self.refresh_token = tokens.refresh_token or None

    def me(self) -> Me:
        return Me.model_validate(self.call("GET", f"{API}/me"))

    def algorithms(self) -> list[Algorithm]:
        """The detector catalog, each entry with its parameter schema."""
        return [Algorithm.model_validate(item) for item in self.call("GET", f"{API}/algorithms")["items"]]

    # -- tenants (superadmin) -----------------------------------------------------------------------------
    def create_tenant(self, name: str, *, idempotency_key: str | None = None) -> Tenant:
        made = self.call("POST", f"{API}/tenants", json={"name": name}, idempotency_key=idempotency_key)
        return Tenant.model_validate(made)

    def list_tenants(self, *, limit: int | None = None, cursor: str | None = None) -> Page[Tenant]:
        return Page[Tenant].model_validate(
            self.call("GET", f"{API}/tenants", params={"limit": limit, "cursor": cursor})
        )

    def get_tenant(self, tenant_id: str) -> Tenant:
        return Tenant.model_validate(self.call("GET", f"{API}/tenants/{tenant_id}"))

    def update_tenant(self, tenant_id: str, *, name: str | None = None, status: str | None = None) -> Tenant:
        body = {k: v for k, v in {"name": name, "status": status}.items() if v is not None}
        return Tenant.model_validate(self.call("PATCH", f"{API}/tenants/{tenant_id}", json=body))

    def delete_tenant(self, tenant_id: str) -> None:
        self.request("DELETE", f"{API}/tenants/{tenant_id}")

    # -- users (tenant admin; a superadmin names the tenant) ---------------------------------------------
    def create_user(
        self,
        email: str,
        password: str,
        *,
        role: str = "analyst",
        tenant_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> User:
        body: dict[str, Any] = {"email": email, "password": password, "role": role}
        if tenant_id is not None:
            body["tenant_id"] = tenant_id
        return User.model_validate(self.call("POST", f"{API}/users", json=body, idempotency_key=idempotency_key))

    def list_users(self, *, limit: int | None = None, cursor: str | None = None) -> Page[User]:
        return Page[User].model_validate(self.call("GET", f"{API}/users", params={"limit": limit, "cursor": cursor}))

    def get_user(self, user_id: str) -> User:
        return User.model_validate(self.call("GET", f"{API}/users/{user_id}"))

    def update_user(self, user_id: str, *, role: str | None = None, is_active: bool | None = None) -> User:
        body = {k: v for k, v in {"role": role, "is_active": is_active}.items() if v is not None}
        return User.model_validate(self.call("PATCH", f"{API}/users/{user_id}", json=body))

    def delete_user(self, user_id: str) -> None:
        self.request("DELETE", f"{API}/users/{user_id}")

    # -- detection (also `detectors.detect`) ----------------------------------------------------------------
    def detect(
        self,
        detector_id: str,
        *,
        records: list[dict[str, Any]] | None = None,
        dataset_id: str | None = None,
        frame: Any = None,
        version: int | None = None,
        explain: int | None = None,
        idempotency_key: str | None = None,
    ) -> DetectionResult | Job:
        """Scores inline `records`, a polars `frame` (sent as Parquet) — both answer the scores — or a stored
        `dataset_id`, which answers a job (wait for it with `jobs.wait`). `explain=k`: each row's top-k features."""
        return self.detectors.detect(
            detector_id,
            records=records,
            dataset_id=dataset_id,
            frame=frame,
            version=version,
            explain=explain,
            idempotency_key=idempotency_key,
        )

    def __repr__(self) -> str:
        return f"VigilClient({self.base_url!r}, authenticated={bool(self.token or self.api_key)})"


__all__ = ["API", "VigilClient"]

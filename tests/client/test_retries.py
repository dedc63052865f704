"""The SDK retries idempotent requests (and writes with an Idempotency-Key) after a lost connection, against a
real server; a plain write is never sent twice. The first connection attempts fail for real: a transport in front
of the real one refuses them, as a dead process behind a load balancer would."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.client.conftest import SdkTenant
from vigil.client import VigilClient, VigilConnectionError


class _FirstAttemptsRefused(httpx.BaseTransport):
    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent = 0
        self._real = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += 1
        if self.failures > 0:
            self.failures -= 1
            raise httpx.ConnectError("connection refused (injected)", request=request)
        return self._real.handle_request(request)


def _client(tenant: SdkTenant, transport: httpx.BaseTransport, retries: int) -> VigilClient:
    return VigilClient(tenant.analyst.base_url, token=tenant.analyst.token, transport=transport, retries=retries)


def test_a_read_is_retried(sdk_tenant: SdkTenant) -> None:
    transport = _FirstAttemptsRefused(failures=2)
    with _client(sdk_tenant, transport, retries=2) as client:
        assert client.me()["tenant"]["id"] == sdk_tenant.id
    assert transport.sent == 3


def test_a_keyed_write_is_retried_and_applied_once(sdk_tenant: SdkTenant) -> None:
    transport = _FirstAttemptsRefused(failures=1)
    name = f"retried-{uuid.uuid4().hex[:8]}"
    with _client(sdk_tenant, transport, retries=1) as client:
        created = client.detectors.create(name=name, algorithm="iforest", idempotency_key=uuid.uuid4().hex)
    names = [d["name"] for d in sdk_tenant.analyst.detectors.iter_all()]
    assert names.count(name) == 1
    assert created["name"] == name


def test_a_write_without_a_key_is_never_sent_twice(sdk_tenant: SdkTenant) -> None:
    transport = _FirstAttemptsRefused(failures=1)
    with _client(sdk_tenant, transport, retries=3) as client, pytest.raises(VigilConnectionError):
        client.detectors.create(name=f"once-{uuid.uuid4().hex[:8]}", algorithm="iforest")
    assert transport.sent == 1


def test_no_retries_by_default(sdk_tenant: SdkTenant) -> None:
    transport = _FirstAttemptsRefused(failures=1)
    with _client(sdk_tenant, transport, retries=0) as client, pytest.raises(VigilConnectionError):
        client.me()

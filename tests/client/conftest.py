"""Fixtures for the SDK's tests: one real server per module, and a fresh tenant per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.client.live_server import live_server
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD
from vigil.client import VigilClient


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("vigil-data")) as url:
        yield url


@pytest.fixture
def root(server_url: str) -> Iterator[VigilClient]:
    with VigilClient(server_url) as client:
        client.login(ADMIN_EMAIL, ADMIN_PASSWORD)
        yield client


@dataclass
class SdkTenant:
    id: str
    analyst: VigilClient
    viewer: VigilClient


@pytest.fixture
def sdk_tenant(root: VigilClient, server_url: str) -> Iterator[SdkTenant]:
    suffix = uuid.uuid4().hex[:8]
    tenant = root.create_tenant(f"sdk-{suffix}")
    clients = {}
    for role in ("analyst", "viewer"):
        email = f"{role}-{suffix}@example.com"
        root.create_user(email, PASSWORD, role=role, tenant_id=tenant["id"])
        clients[role] = VigilClient(server_url)
        clients[role].login(email, PASSWORD)
    yield SdkTenant(id=tenant["id"], analyst=clients["analyst"], viewer=clients["viewer"])
    for client in clients.values():
        client.close()
    root.delete_tenant(tenant["id"])

"""What the performance suite loads the target with: a tenant provisioned through the API as an operator would
(its call and detector quotas raised for a load test), a trained detector, a dataset with a profile report, and
virtual users — each an API key of its own standing for a client at an address of its own (`X-Forwarded-For`,
from the benchmarking range 198.18.0.0/15; only a header, never a destination), plus a logged-in user's session.

Operations are grouped in classes whose p99 the configuration bounds: `read`, `detect` (a small inline batch),
`bulk` (uploads and Parquet detection) and `write` (creates, renames, training requests).
"""

from __future__ import annotations

import io
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from vigil.client import VigilClient
from vigil_validation.checks import watch_job
from vigil_validation.config import ValidationConfig
from vigil_validation.load import Operation, VirtualUser
from vigil_validation.testdata import LabelledData

API = "/api/v1"
PARQUET = "application/vnd.apache.parquet"
KEY_SCOPES = [
    "datasets:read",
    "datasets:write",
    "detectors:read",
    "detectors:write",
    "detect",
    "jobs:read",
    "algorithms:read",
]
SMALL_BATCH = 20
BULK_ROWS = 2000
UPLOAD_ROWS = 100
# Which threshold bounds an operation's p99 (`performance.<class>_p99_ms`).
CLASSES = {"read": "read_p99_ms", "detect": "detect_p99_ms", "bulk": "upload_p99_ms", "write": "write_p99_ms"}


@dataclass
class Workload:
    url: str
    tenant_id: str
    admin: VigilClient
    email: str
    dataset_id: str
    detector_id: str
    trainee_id: str
    small_body: bytes
    bulk_body: bytes
    upload_body: bytes
    keys: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    classes: dict[str, str] = field(default_factory=dict)  # operation name -> class
    created: list[str] = field(default_factory=list)  # detectors whose creation was acknowledged (201)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def users(self, session_token: str) -> list[VirtualUser]:
        """One virtual user per key; every one also carries the logged-in user's session (for `/me`)."""
        return [
            VirtualUser(
                name=f"vu{i}",
                headers={"X-API-Key": key, "X-Forwarded-For": f"198.18.{i // 250}.{i % 250 + 1}"},
                context={"session": {"Authorization": f"Bearer {session_token}"}},
            )
            for i, key in enumerate(self.keys)
        ]

    def login(self, password: str) -> str:
        client = VigilClient(self.url)
        try:
            return str(client.login(self.email, password)["access_token"])
        finally:
            client.close()

    # -- operations ---------------------------------------------------------------------------------------------
    def operation(self, name: str, weight: float) -> Operation:
        sends = {
            "list datasets": ("read", self._list_datasets),
            "list detectors": ("read", self._list_detectors),
            "get detector": ("read", self._get_detector),
            "get dataset": ("read", self._get_dataset),
            "list jobs": ("read", self._list_jobs),
            "read report": ("read", self._read_report),
            "me": ("read", self._me),
            "detect small": ("detect", self._detect_small),
            "detect bulk": ("bulk", self._detect_bulk),
            "upload": ("bulk", self._upload),
            "train": ("write", self._train),
            "create detector": ("write", self._create_detector),
            "rename dataset": ("write", self._rename_dataset),
        }
        kind, send = sends[name]
        self.classes[name] = kind
        return Operation(name=name, weight=weight, send=send)

    async def _list_datasets(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        return await c.get(f"{API}/datasets", params={"limit": 20}, headers=u.headers)

    async def _list_detectors(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        return await c.get(f"{API}/detectors", params={"limit": 20}, headers=u.headers)

    async def _get_detector(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        return await c.get(f"{API}/detectors/{self.detector_id}", headers=u.headers)

    async def _get_dataset(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        return await c.get(f"{API}/datasets/{self.dataset_id}", headers=u.headers)

    async def _list_jobs(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        return await c.get(f"{API}/jobs", params={"limit": 20}, headers=u.headers)

    async def _read_report(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        return await c.get(f"{API}/datasets/{self.dataset_id}/profile", headers=u.headers)

    async def _me(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        headers = {**u.context["session"], "X-Forwarded-For": u.headers["X-Forwarded-For"]}
        return await c.get(f"{API}/me", headers=headers)

    async def _detect_small(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        headers = {**u.headers, "Content-Type": "application/json"}
        return await c.post(f"{API}/detectors/{self.detector_id}/detect", content=self.small_body, headers=headers)

    async def _detect_bulk(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        headers = {**u.headers, "Content-Type": PARQUET, "Accept": PARQUET}
        return await c.post(f"{API}/detectors/{self.detector_id}/detect", content=self.bulk_body, headers=headers)

    async def _upload(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        headers = {**u.headers, "Content-Type": "text/csv"}
        return await c.post(f"{API}/datasets", params={"name": "load"}, content=self.upload_body, headers=headers)

    async def _train(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        body = {"dataset_id": self.dataset_id}
        return await c.post(f"{API}/detectors/{self.trainee_id}/train", json=body, headers=u.headers)

    async def _create_detector(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        name = f"load-{self.run_id}-{uuid.uuid4().hex[:10]}"
        body = {"name": name, "algorithm": "iforest"}
        response = await c.post(f"{API}/detectors", json=body, headers=u.headers)
        if response.status_code == 201:
            with self._lock:
                self.created.append(response.json()["id"])
        return response

    async def _rename_dataset(self, c: httpx.AsyncClient, u: VirtualUser) -> httpx.Response:
        body = {"description": f"renamed by {u.name}"}
        return await c.patch(f"{API}/datasets/{self.dataset_id}", json=body, headers=u.headers)


def provision(
    admin: VigilClient, config: ValidationConfig, data: LabelledData, *, url: str, users: int
) -> Iterator[Workload]:
    """Provisions the workload's tenant and data through the API; deletes the tenant (and all of it) afterwards."""
    suffix = uuid.uuid4().hex[:10]
    tenant = admin.create_tenant(f"performance-{suffix}")
    try:
        # A load test's tenant: quotas an operator would raise for it, so the load measures the server, not them.
        admin.call(
            "PATCH",
            f"{API}/tenants/{tenant['id']}",
            json={"quotas": {"api_calls_per_hour": 50_000_000, "detectors": 1_000_000, "datasets": 1_000_000}},
        )
        email = f"perf-admin-{suffix}@validation.example.com"
        password = config.security.password
        admin.create_user(email, password, role="admin", tenant_id=tenant["id"])
        owner = VigilClient(url, timeout=config.api.request_timeout_s)
        owner.login(email, password)
        try:
            yield _prepare(owner, config, data, url=url, tenant_id=tenant["id"], email=email, users=users)
        finally:
            owner.close()
    finally:
        admin.delete_tenant(tenant["id"])


def _prepare(
    owner: VigilClient,
    config: ValidationConfig,
    data: LabelledData,
    *,
    url: str,
    tenant_id: str,
    email: str,
    users: int,
) -> Workload:
    features = data.features
    dataset = owner.datasets.upload(data.csv, name="performance-train")
    owner.call("POST", f"{API}/datasets/{dataset['id']}/profile")
    detectors = []
    for name in ("performance-detect", "performance-trainee"):
        detector = owner.detectors.create(
            name=name, algorithm="iforest", features=features, contamination=config.test_data.contamination
        )
        job = owner.detectors.train(detector["id"], dataset["id"])
        final, _, _ = watch_job(owner, job["id"], timeout=config.api.job_timeout_s, poll=config.api.job_poll_interval_s)
        assert final["status"] == "succeeded", final
        detectors.append(detector["id"])
    frame = data.frame.select(features)
    small = frame.head(SMALL_BATCH).to_dicts()
    bulk = frame.sample(BULK_ROWS, with_replacement=True, seed=1)
    buffer = io.BytesIO()
    bulk.write_parquet(buffer)
    upload = data.frame.head(UPLOAD_ROWS).write_csv().encode()
    keys = [
        owner.call("POST", f"{API}/api-keys", json={"name": f"vu{i}", "scopes": KEY_SCOPES})["key"]
        for i in range(users)
    ]
    return Workload(
        url=url,
        tenant_id=tenant_id,
        admin=owner,
        email=email,
        dataset_id=dataset["id"],
        detector_id=detectors[0],
        trainee_id=detectors[1],
        small_body=orjson.dumps({"records": small}),
        bulk_body=buffer.getvalue(),
        upload_body=upload,
        keys=keys,
    )


def by_class(workload: Workload, operations: dict[str, dict[str, Any]]) -> dict[str, list[tuple[str, float]]]:
    """Each class's operations with their p99 (ms), from a load's per-operation summary."""
    grouped: dict[str, list[tuple[str, float]]] = {}
    for name, stats in operations.items():
        grouped.setdefault(workload.classes[name], []).append((name, float(stats["p99"])))
    return grouped

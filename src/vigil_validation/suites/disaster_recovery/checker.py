"""The consistency checker (Jepsen's method, for Vigil's writes): a history of idempotent writes, each with what
its client saw — acknowledged (2xx), definitely refused (4xx), or unknown (no answer, 5xx) — then a read-back:

- every acknowledged write exists exactly once, with the id it was acknowledged with and the right content;
- every unknown write exists at most once, and a retry with its `Idempotency-Key` completes it (2xx), after
  which it exists exactly once;
- nothing of one tenant appears in another's lists.

The writers run in threads while faults are injected; the checker runs after the deployment has recovered."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from vigil.client import VigilClient, VigilConnectionError

Outcome = Literal["ack", "refused", "unknown"]
Kind = Literal["dataset", "detector"]
ROWS = 20
REAPPLIED_FINDING = (
    "a write committed just before a crash is applied again by the retry: the idempotency record is finished in a "
    "transaction of its own after the answer, so the retry that takes over the dead request's claim runs the "
    "write a second time (the record must be finished, or marked applied, in the write's own transaction)"
)


@dataclass
class Write:
    kind: Kind
    tenant: str
    key: str
    name: str
    outcome: Outcome = "unknown"
    status: int = 0
    acked_id: str | None = None
    t_s: float = 0.0


@dataclass
class Verdict:
    requests: int = 0
    acknowledged: int = 0
    unknown: int = 0
    refused: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    unfinishable: list[str] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)
    # Unknown writes that had been applied, which the retry applied a second time (the retry took over the claim
    # of a request that died between its commit and the recording of its answer). Duplicates, kept apart so the
    # known finding (REAPPLIED_FINDING) is reported by name while every other duplicate fails outright.
    reapplied: list[str] = field(default_factory=list)
    completed_by_retry: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "requests": self.requests,
            "acknowledged": self.acknowledged,
            "unknown": self.unknown,
            "refused": self.refused,
            "lost": len(self.lost),
            "duplicated": len(self.duplicated),
            "wrong_content": len(self.wrong),
            "unfinishable": len(self.unfinishable),
            "leaked": len(self.leaked),
            "reapplied": len(self.reapplied),
            "completed_by_retry": self.completed_by_retry,
        }


def _csv(name: str) -> bytes:
    # Content derived from the name: the read-back knows what each dataset must hold.
    seed = sum(name.encode())
    lines = ["a,b"] + [f"{(seed + i) % 97},{i}" for i in range(ROWS)]
    return ("\n".join(lines) + "\n").encode()


def send_write(client: VigilClient, write: Write) -> httpx.Response:
    headers = {"Idempotency-Key": write.key}
    if write.kind == "dataset":
        return client.send(
            "POST",
            "/api/v1/datasets",
            content=_csv(write.name),
            params={"name": write.name},
            headers={**headers, "Content-Type": "text/csv"},
        )
    return client.send("POST", "/api/v1/detectors", json={"name": write.name, "algorithm": "iforest"}, headers=headers)


def classify(status: int) -> Outcome:
    if 200 <= status < 300:
        return "ack"
    if 400 <= status < 500 and status not in (408, 409, 429):
        return "refused"
    # No answer, 5xx (the write may have been applied after the deadline), 409 (its key is claimed by a request
    # still running), 429: the client does not know — the checker holds the write to "at most once + completable".
    return "unknown"


@dataclass
class Workload:
    """Writer threads: each sends new writes (datasets and detectors, alternately by a seeded coin) for its
    tenant until stopped, recording every outcome."""

    clients: dict[str, VigilClient]  # tenant id -> a logged-in analyst of it
    seed: int
    writers: int = 4
    pause_s: float = 0.05
    history: list[Write] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _writer(self, n: int) -> None:
        rng = random.Random(f"{self.seed}:{n}")
        tenants = sorted(self.clients)
        while not self._stop.is_set():
            tenant = tenants[rng.randrange(len(tenants))]
            key = uuid.UUID(int=rng.getrandbits(128)).hex
            kind: Kind = "dataset" if rng.random() < 0.5 else "detector"
            write = Write(kind=kind, tenant=tenant, key=key, name=f"dr-{kind}-{key[:16]}")
            try:
                response = send_write(self.clients[tenant], write)
                write.status = response.status_code
                if 200 <= response.status_code < 300:
                    write.acked_id = response.json()["id"]
            except VigilConnectionError:
                write.status = 0
            write.outcome = classify(write.status)
            write.t_s = self.clock()
            with self._lock:
                self.history.append(write)
            # Back off after a failure, as a real client would (and so a down server is not spun on).
            self._stop.wait(self.pause_s if write.outcome == "ack" else 1.0)

    def start(self) -> None:
        for n in range(self.writers):
            thread = threading.Thread(target=self._writer, args=(n,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)


def _names(client: VigilClient, kind: Kind) -> list[tuple[str, dict[str, Any]]]:
    collection = client.datasets if kind == "dataset" else client.detectors
    return [(item.name, item.to_dict()) for item in collection.iter_all(page_size=100)]


def _retry(client: VigilClient, write: Write, *, for_s: float) -> httpx.Response:
    """The write again with its key, as a client would retry it: while the answer says "not yet" (409: the key is
    still claimed by a request that was cut off; 503; 429) it waits `Retry-After` and tries again, for `for_s`."""
    deadline = time.monotonic() + for_s
    while True:
        response = send_write(client, write)
        if response.status_code not in (409, 429, 503) or time.monotonic() >= deadline:
            return response
        try:
            wait = float(response.headers.get("retry-after", "1"))
        except ValueError:
            wait = 1.0
        time.sleep(min(max(wait, 0.2), 5.0, max(0.0, deadline - time.monotonic())))


def check(
    history: list[Write], clients: dict[str, VigilClient], *, retry: bool = True, retry_for_s: float = 30.0
) -> Verdict:
    """Reads everything back and judges the history (retrying each unknown write with its key if `retry`)."""
    verdict = Verdict(requests=len(history))
    listed: dict[tuple[str, Kind], list[tuple[str, dict[str, Any]]]] = {
        (tenant, kind): _names(client, kind) for tenant, client in clients.items() for kind in ("dataset", "detector")
    }
    owner = {w.name: w.tenant for w in history}
    for (tenant, _), items in listed.items():
        for name, _item in items:
            if owner.get(name, tenant) != tenant:
                verdict.leaked.append(f"{name} of tenant {owner[name]} in tenant {tenant}")
    for write in history:
        found = [item for name, item in listed[(write.tenant, write.kind)] if name == write.name]
        label = f"{write.kind} {write.name} ({write.outcome}, {write.status})"
        if write.outcome == "ack":
            verdict.acknowledged += 1
            if not found:
                verdict.lost.append(label)
            elif len(found) > 1:
                verdict.duplicated.append(label)
            elif found[0]["id"] != write.acked_id:
                verdict.wrong.append(f"{label}: acknowledged as {write.acked_id}, stored as {found[0]['id']}")
            elif write.kind == "dataset" and found[0].get("rows") != ROWS:
                verdict.wrong.append(f"{label}: {found[0].get('rows')} rows, not {ROWS}")
            continue
        if write.outcome == "refused":
            verdict.refused += 1
            if found:
                verdict.wrong.append(f"{label}: refused but stored")
            continue
        verdict.unknown += 1
        if len(found) > 1:
            verdict.duplicated.append(label)
            continue
        if not retry:
            continue
        response = _retry(clients[write.tenant], write, for_s=retry_for_s)
        if not 200 <= response.status_code < 300:
            verdict.unfinishable.append(f"{label}: the retry answered {response.status_code}")
            continue
        verdict.completed_by_retry += 1
        if found and response.json()["id"] != found[0]["id"]:
            verdict.reapplied.append(f"{label}: applied before the crash, applied again by the retry")
    return verdict

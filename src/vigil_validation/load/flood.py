"""A closed-loop flood of GETs from a process of its own (`multiprocessing`, spawn): a test that measures another
client's latency beside it must not share that client's interpreter lock with the flood. In one process, the
measuring thread waits for the lock behind the flooding threads (5 ms switch interval), and that wait — the test
client's own, not the server's — showed as the server's tail latency."""

from __future__ import annotations

import time
from multiprocessing.sharedctypes import Synchronized, SynchronizedArray
from multiprocessing.synchronize import Event

from vigil.client import VigilClient
from vigil.client.retry import NO_RETRY
from vigil_validation.spread import RoundRobinTransport


def flood(
    base_urls: list[str],
    token: str,
    path: str,
    forwarded_for: str,
    sent: Synchronized[int],
    latencies: SynchronizedArray[float],
    ready: Event,
    stop: Event,
) -> None:
    """GETs `path`, one after another, until `stop` is set or `sent` (shared by the flooding processes) reaches
    the length of `latencies`, where each request's latency (ms) goes; sets `ready` once the first answer is in."""
    transport = RoundRobinTransport(base_urls) if len(base_urls) > 1 else None
    client = VigilClient(base_urls[0], token=token, transport=transport, retry=NO_RETRY)
    try:
        while not stop.is_set():
            with sent.get_lock():
                if sent.value >= len(latencies):
                    break
                index = sent.value
                sent.value += 1
            started = time.perf_counter()
            client.send("GET", path, headers={"X-Forwarded-For": forwarded_for})
            latencies[index] = (time.perf_counter() - started) * 1000
            ready.set()
    finally:
        ready.set()  # a flood that ends (or fails) at once must not keep the test waiting
        client.close()
        if transport is not None:
            transport.shutdown()

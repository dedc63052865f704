"""Spreading a client's requests over several API processes (a cluster target), as a load balancer would: each
request goes to the next process in turn, so consecutive calls of one test land on different processes."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx


class RoundRobinTransport(httpx.BaseTransport):
    def __init__(self, base_urls: Sequence[str]) -> None:
        if not base_urls:
            raise ValueError("a round robin needs at least one URL")
        self.origins = [urlsplit(url) for url in base_urls]
        self._next = itertools.cycle(range(len(self.origins)))
        self._lock = threading.Lock()
        self._transport = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            origin = self.origins[next(self._next)]
        request.url = request.url.copy_with(scheme=origin.scheme, host=origin.hostname, port=origin.port)
        request.headers["Host"] = origin.netloc
        return self._transport.handle_request(request)

    def close(self) -> None:
        """Shared by every client of the session: one client closing must not close it for the others; the
        session closes it once, after them all (`shutdown`)."""

    def shutdown(self) -> None:
        self._transport.close()

"""A real Vigil server in a background thread (uvicorn on a free port), for tests that need real HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from tests.conftest import make_settings
from vigil.app import create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def live_server(data_dir: Path, *, port: int | None = None, **overrides: object) -> Iterator[str]:
    """Serves a fresh app over real HTTP (settings `overrides` on the tests' own); yields its base URL; shuts it
    down (lifespan included) afterwards."""
    port = port or free_port()
    config = uvicorn.Config(
        create_app(make_settings(data_dir, **overrides)),
        host="127.0.0.1",
        port=port,
        log_config=None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)

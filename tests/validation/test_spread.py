"""The cluster target's client spreads requests over every API process in turn (two real HTTP servers here), and
its configuration section is validated on load."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vigil.client import VigilClient
from vigil_validation.config import ConfigError, load_config
from vigil_validation.spread import RoundRobinTransport


class _WhoAmI(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = f'{{"status": "ok", "version": "{self.server.server_address[1]}"}}'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[list[ThreadingHTTPServer]]:
    made = [ThreadingHTTPServer(("127.0.0.1", 0), _WhoAmI) for _ in range(2)]
    for server in made:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    yield made
    for server in made:
        server.shutdown()
        server.server_close()


def test_requests_alternate_between_processes(servers: list[ThreadingHTTPServer]) -> None:
    urls = [f"http://127.0.0.1:{s.server_address[1]}" for s in servers]
    transport = RoundRobinTransport(urls)
    client = VigilClient(urls[0], transport=transport)
    answered = [client.send("GET", "/health", authenticated=False).json()["version"] for _ in range(6)]
    ports = [str(s.server_address[1]) for s in servers]
    assert answered == ports * 3
    other = client.with_token("t")  # clients made from it share the rotation
    client.close()  # …and one closing does not close it for the others
    assert other.send("GET", "/health", authenticated=False).status_code == 200
    transport.shutdown()  # its owner closes its connections, once, after every client


def test_the_cluster_section_is_validated(tmp_path: Path) -> None:
    config = load_config()
    assert (config.cluster.api_processes, config.cluster.workers) == (2, 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster:\n  broker_url: http://nowhere\n  database_url: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as error:
        load_config(bad)
    assert "cluster.broker_url" in str(error.value)
    assert "cluster.database_url" in str(error.value)

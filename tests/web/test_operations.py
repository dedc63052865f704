"""Liveness, readiness, metrics, problem-type documentation, request ids — through real HTTP calls."""

from __future__ import annotations

import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from tests.conftest import make_settings
from vigil.app import create_app
from vigil.config import Settings
from vigil.core.errors import VigilError


def test_health_is_ok_and_carries_a_request_id(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert len(response.headers["x-request-id"]) >= 16


def test_health_says_how_long_a_change_may_take_to_hold_on_other_processes(tmp_path: Path) -> None:
    # The larger of the two caches' lifetimes: a client waits out this bound, not a guess.
    settings = make_settings(tmp_path / "data", auth_cache_ttl_s=1.5, lookup_cache_ttl_s=3.0)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").json()["staleness_bound_s"] == 3.0
    off = make_settings(tmp_path / "off", auth_cache_ttl_s=0, lookup_cache_ttl_s=0)
    with TestClient(create_app(off)) as client:
        assert client.get("/health").json()["staleness_bound_s"] == 0


def test_a_sane_client_request_id_is_echoed(client: TestClient) -> None:
    assert client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    assert client.get("/health", headers={"X-Request-ID": "<bad id>"}).headers["x-request-id"] != "<bad id>"


def test_ready_checks_database_and_blob_store(client: TestClient) -> None:
    body = client.get("/ready").json()
    assert body == {"status": "ready", "checks": {"database": "ok", "blob_store": "ok"}}


def test_ready_is_503_problem_when_the_blob_store_is_gone(client: TestClient, settings: Settings) -> None:
    shutil.rmtree(settings.blob_root)
    settings.blob_root.write_text("not a directory any more")
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"]
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["blob_store"].startswith("unavailable")


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/api/v1/datasets/ds_123")
    text = client.get("/metrics").text
    assert 'vigil_http_requests_total{method="GET",route="/api/v1/datasets/{dataset_id}",status="401"}' in text
    assert "vigil_http_request_duration_seconds_bucket" in text
    assert "ds_123" not in text


def test_problem_types_are_documented(client: TestClient) -> None:
    catalog = client.get("/problems").json()
    assert "/problems/not-found" in catalog
    assert client.get("/problems/quota-exceeded").json()["type"] == "/problems/quota-exceeded"
    assert client.get("/problems/nope").status_code == 404


def _subclasses(cls: type[VigilError]) -> list[type[VigilError]]:
    return [cls, *(c for sub in cls.__subclasses__() for c in _subclasses(sub))]


def test_every_problem_a_service_raises_is_served_and_documented(client: TestClient) -> None:
    # DESIGN: each problem `type` is a documented URI — `GET /problems/{slug}` describes it and docs/problems.md
    # lists it — so a new VigilError cannot be raised with a type that leads nowhere.
    documented = Path(__file__).parents[2].joinpath("docs", "problems.md").read_text()
    for slug in sorted({error.slug for error in _subclasses(VigilError)}):
        assert client.get(f"/problems/{slug}").status_code == 200, slug
        assert f"`/problems/{slug}`" in documented, slug


def test_metrics_can_be_protected_by_a_token(tmp_path: Path) -> None:
    """Finding 13: with VIGIL_METRICS_TOKEN set, /metrics needs it; unset, it stays open."""
    settings = make_settings(tmp_path / "data", metrics_token="scraper-token-0123456789")
    with TestClient(create_app(settings, run_workers=False), raise_server_exceptions=False) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/metrics").headers["content-type"] == "application/problem+json"
        allowed = client.get("/metrics", headers={"Authorization": "Bearer scraper-token-0123456789"})
        assert allowed.status_code == 200
        assert "vigil" in allowed.text


def test_hsts_only_over_https_or_from_a_trusted_proxy_saying_so(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", trusted_proxies=["127.0.0.0/8"])
    app = create_app(settings, run_workers=False)
    with TestClient(app, base_url="https://vigil.test") as tls:
        assert tls.get("/health").headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(app, base_url="http://vigil.test", client=("127.0.0.1", 50000)) as behind_proxy:
        assert "strict-transport-security" not in behind_proxy.get("/health").headers
        said = behind_proxy.get("/health", headers={"X-Forwarded-Proto": "https"})
        assert said.headers["strict-transport-security"] == "max-age=31536000"
    with TestClient(app, base_url="http://vigil.test", client=("198.51.100.7", 50000)) as direct:
        # Not a trusted proxy: its claim is ignored.
        assert "strict-transport-security" not in direct.get("/health", headers={"X-Forwarded-Proto": "https"}).headers

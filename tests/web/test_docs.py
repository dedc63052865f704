"""The interactive docs work with no network: assets served by the server itself, a self-contained OpenAPI document,
the groups in a user's order — and, in headless Chromium with every other host unreachable, both pages render."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.client.live_server import live_server
from tests.conftest import services_required
from vigil.web.docs import OPENAPI_TAGS, hoist_definitions

USER_PATH = ["datasets", "detectors", "jobs", "streams"]


def test_root_sends_a_visitor_to_the_docs(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/docs"


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_nothing_from_another_origin(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert not re.findall(r"(?:src|href)=\"https?://", response.text)
    # The page's own policy would refuse anything from elsewhere, were it ever referenced.
    assert "default-src 'self'" in response.headers["content-security-policy"]
    for asset in re.findall(r"(/docs/assets/[\w.-]+)", response.text):
        assert client.get(asset).status_code == 200, asset


def test_the_api_keeps_its_strict_policy(client: TestClient) -> None:
    assert client.get("/health").headers["content-security-policy"].startswith("default-src 'none'")


def test_groups_follow_a_users_path_then_administration(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    names = [tag["name"] for tag in document["tags"]]
    assert names[: len(USER_PATH)] == USER_PATH
    used = {tag for path in document["paths"].values() for op in path.values() for tag in op.get("tags", [])}
    assert used <= set(names), f"untagged groups would be listed after all the others: {used - set(names)}"


def test_every_reference_in_the_document_resolves(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    text = json.dumps(document)
    assert '"$defs"' not in text
    schemas = document["components"]["schemas"]
    for ref in set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text)):
        assert ref in schemas, ref


def test_hoisting_moves_nested_definitions_to_the_components() -> None:
    inner = {"$ref": "#/components/schemas/Options"}
    document: dict[str, Any] = {
        "paths": {"/x": {"post": {"schema": {"properties": {"o": inner}, "$defs": {"Options": {"type": "object"}}}}}},
        "components": {"schemas": {}},
    }
    hoist_definitions(document)
    assert document["components"]["schemas"] == {"Options": {"type": "object"}}
    assert "$defs" not in document["paths"]["/x"]["post"]["schema"]


# -- in a real browser ---------------------------------------------------------------------------------------------


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        if services_required():
            pytest.fail("headless Chromium is required (CI installs the `chromium` package in .ci/run)")
        pytest.skip("no Chromium on this machine (apt-get install chromium); VIGIL_REQUIRE_SERVICES=1 makes it fail")
    return found


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with live_server(tmp_path_factory.mktemp("vigil-docs")) as url:
        yield url


def render(chromium: str, url: str, tmp_path: Path) -> str:
    """The page's DOM after its scripts ran, in a browser that can reach this machine and nothing else."""
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=30000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_swagger_ui_renders_offline_in_the_users_order(server_url: str, tmp_path: Path) -> None:
    dom = render(_chromium(), f"{server_url}/docs", tmp_path)
    rendered = list(dict.fromkeys(re.findall(r'data-tag="([^"]+)"', dom)))
    assert rendered == [tag["name"] for tag in OPENAPI_TAGS]
    assert "Upload a dataset" in dom


@pytest.mark.slow
def test_redoc_renders_offline(server_url: str, tmp_path: Path) -> None:
    dom = render(_chromium(), f"{server_url}/redoc", tmp_path)
    assert "Something went wrong" not in dom, re.sub(r"<[^>]+>", " ", dom)[-1500:]
    assert "Upload a dataset" in dom
    headings = re.findall(r'data-section-id="tag/([^"/]+)"', dom)
    assert list(dict.fromkeys(headings))[: len(USER_PATH)] == USER_PATH

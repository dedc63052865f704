"""Cursor pagination: bounded `limit`, newest first, and no item lost or repeated while others are added."""

from __future__ import annotations

import threading

import pytest

from vigil.client import VigilClient
from vigil_validation.checks import assert_problem
from vigil_validation.config import ValidationConfig
from vigil_validation.plugin import ProvisionedTenant


def upload(client: VigilClient, name: str) -> str:
    return str(client.datasets.upload(b"v\n1\n2\n", name=name)["id"])


def test_pages_are_newest_first_and_complete_while_items_are_added(
    tenant: ProvisionedTenant, validation_config: ValidationConfig
) -> None:
    count = validation_config.contracts.pagination_items
    existing = [upload(tenant.analyst, f"item-{i}") for i in range(count)]
    stop = threading.Event()
    added: list[str] = []
    errors: list[BaseException] = []

    def add_more() -> None:
        try:
            while not stop.is_set() and len(added) < 20:
                added.append(upload(tenant.admin, f"concurrent-{len(added)}"))
        except BaseException as exc:  # surfaced in the test's thread below
            errors.append(exc)

    writer = threading.Thread(target=add_more)
    writer.start()
    seen: list[dict[str, str]] = []
    try:
        cursor: str | None = None
        while True:
            page = tenant.viewer.datasets.list(limit=2, cursor=cursor)
            assert len(page["items"]) <= 2
            seen.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
    finally:
        stop.set()
        writer.join(timeout=60)
    assert not errors, errors
    ids = [item["id"] for item in seen]
    assert len(ids) == len(set(ids)), "an item was repeated across pages"
    assert set(existing) <= set(ids), f"items lost across pages: {set(existing) - set(ids)}"
    stamps = [item["created_at"] for item in seen]
    assert stamps == sorted(stamps, reverse=True), "the list is not newest first"
    # A fresh walk after the writes sees everything, still without repeats.
    everything = [d["id"] for d in tenant.viewer.datasets.iter_all(page_size=3)]
    assert len(everything) == len(set(everything))
    assert set(everything) == set(existing) | set(added)


@pytest.mark.smoke
def test_limit_is_bounded(tenant: ProvisionedTenant, validation_config: ValidationConfig) -> None:
    top = validation_config.contracts.max_page_limit
    viewer = tenant.viewer
    for path in ("/api/v1/datasets", "/api/v1/detectors", "/api/v1/jobs"):
        assert viewer.send("GET", path, params={"limit": top}).status_code == 200
        for bad in (top + 1, 0, -1):
            assert_problem(viewer.send("GET", path, params={"limit": bad}), 422)


def test_foreign_cursor_is_422(tenant: ProvisionedTenant) -> None:
    assert_problem(tenant.viewer.send("GET", "/api/v1/datasets", params={"cursor": "not-a-cursor!"}), 422)

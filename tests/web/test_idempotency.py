"""`Idempotency-Key`: a retried POST replays the first response and does the work once."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import Tenant


def create(client: TestClient, headers: dict[str, str], key: str, name: str = "d") -> tuple[int, dict[str, object]]:
    response = client.post(
        "/api/v1/detectors",
        json={"name": name, "algorithm": "ecod"},
        headers={**headers, "Idempotency-Key": key},
    )
    return response.status_code, response.json()


def test_a_retry_replays_the_first_result_at_once(client: TestClient, tenant: Tenant) -> None:
    # Retried the moment the first answer arrives: the record must already be complete.
    results = [create(client, tenant.analyst, "key-1") for _ in range(5)]
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert len(client.get("/api/v1/detectors", headers=tenant.viewer).json()["items"]) == 1


def test_the_same_key_with_another_request_is_refused(client: TestClient, tenant: Tenant) -> None:
    assert create(client, tenant.analyst, "key-2", name="first")[0] == 201
    status, body = create(client, tenant.analyst, "key-2", name="second")
    assert status == 422
    assert "different request" in str(body["detail"])


def test_keys_belong_to_their_caller(client: TestClient, tenant: Tenant) -> None:
    _, mine = create(client, tenant.analyst, "shared-key")
    _, theirs = create(client, tenant.admin, "shared-key")
    assert mine["id"] != theirs["id"]


def test_a_client_error_is_the_answer_and_replays(client: TestClient, tenant: Tenant) -> None:
    bad = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "magic"},
        headers={**tenant.analyst, "Idempotency-Key": "key-3"},
    )
    assert bad.status_code == 422
    # A client error is the request's answer, and replays as such…
    again = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "magic"},
        headers={**tenant.analyst, "Idempotency-Key": "key-3"},
    )
    assert again.status_code == 422
    assert again.headers.get("idempotent-replayed") == "true"

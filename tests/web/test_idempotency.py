"""`Idempotency-Key`: a retried POST replays the first response and does the work once."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select, update

from tests.conftest import Tenant
from vigil.app import migrate
from vigil.config import Settings
from vigil.core.database import Database, utcnow
from vigil.core.idempotency import RETENTION, Claim, IdempotencyRecord, IdempotencyStore


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


def test_a_replay_is_the_first_answer_not_the_resource_as_it_is_now(client: TestClient, tenant: Tenant) -> None:
    # Stripe's rule and the IETF draft's: the same key gets the same response — the stored one, byte for byte —
    # however the resource changed since (only a lost answer is rebuilt by reading back: test_idempotency_applied).
    headers = {**tenant.analyst, "Idempotency-Key": "then-1"}
    body = {"name": "then", "algorithm": "ecod"}
    first = client.post("/api/v1/detectors", json=body, headers=headers)
    assert first.status_code == 201
    detector = f"/api/v1/detectors/{first.json()['id']}"
    assert client.patch(detector, json={"name": "now"}, headers=tenant.analyst).status_code == 200
    for _ in ("renamed", "deleted"):
        again = client.post("/api/v1/detectors", json=body, headers=headers)
        assert (again.status_code, again.content) == (201, first.content)
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers.get("content-type") == first.headers.get("content-type")
        client.delete(detector, headers=tenant.analyst)


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


# --- finding 4: a replay is answered only to a caller who may still make the request --------------------------------


def _replay(client: TestClient, headers: dict[str, str], key: str) -> Response:
    return client.post(
        "/api/v1/detectors", json={"name": "d", "algorithm": "ecod"}, headers={**headers, "Idempotency-Key": key}
    )


def _user_id(client: TestClient, headers: dict[str, str]) -> str:
    user_id: str = client.get("/api/v1/me", headers=headers).json()["user"]["id"]
    return user_id


def test_a_logged_out_token_gets_no_replay(client: TestClient, tenant: Tenant) -> None:
    assert _replay(client, tenant.analyst, "out-1").status_code == 201
    assert client.post("/api/v1/auth/logout", headers=tenant.analyst).status_code == 204
    again = _replay(client, tenant.analyst, "out-1")
    assert again.status_code == 401
    assert "idempotent-replayed" not in again.headers


def test_a_disabled_user_gets_no_replay(client: TestClient, tenant: Tenant) -> None:
    assert _replay(client, tenant.analyst, "off-1").status_code == 201
    user_id = _user_id(client, tenant.analyst)
    assert client.patch(f"/api/v1/users/{user_id}", json={"is_active": False}, headers=tenant.admin).status_code == 200
    assert _replay(client, tenant.analyst, "off-1").status_code == 401


def test_a_demoted_user_gets_no_replay(client: TestClient, tenant: Tenant) -> None:
    assert _replay(client, tenant.analyst, "down-1").status_code == 201
    user_id = _user_id(client, tenant.analyst)
    assert client.patch(f"/api/v1/users/{user_id}", json={"role": "viewer"}, headers=tenant.admin).status_code == 200
    assert _replay(client, tenant.analyst, "down-1").status_code == 403


def test_a_revoked_api_key_gets_no_replay(client: TestClient, tenant: Tenant) -> None:
    created = client.post(
        "/api/v1/api-keys", json={"name": "ci", "scopes": ["detectors:write"]}, headers=tenant.admin
    ).json()
    key = {"X-API-Key": created["key"]}
    assert _replay(client, key, "rev-1").status_code == 201
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=tenant.admin).status_code == 204
    assert _replay(client, key, "rev-1").status_code == 401


def _records(settings: Settings) -> list[IdempotencyRecord]:
    database = Database(settings)
    try:
        with database.session() as session:
            return list(session.scalars(select(IdempotencyRecord)))
    finally:
        database.dispose()


def test_a_secret_is_never_kept_and_its_replay_says_so(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    headers = {**tenant.admin, "Idempotency-Key": "secret-1"}
    body = {"name": "ci", "scopes": ["datasets:read"]}
    first = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert first.status_code == 201
    secret = first.json()["key"]
    stored = [record for record in _records(settings) if record.key == "secret-1"]
    assert len(stored) == 1
    assert secret.encode() not in (stored[0].body or b"")
    assert secret not in str(stored[0].headers)
    again = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["type"].endswith("/secret-not-replayed")
    assert again.json()["resource_id"] == first.json()["id"]
    assert secret not in again.text
    # Done once: the retry made no second key.
    assert len(client.get("/api/v1/api-keys", headers=tenant.admin).json()["items"]) == 1


def as_left_by_a_crash(settings: Settings, key: str, *, lease_ends: datetime, after_commit: bool = False) -> None:
    """Turns a finished record back into the claim a process that died mid-request leaves behind: before its write
    committed, or (`after_commit`) between the commit — which marked the record applied — and the recording of its
    answer."""
    values: dict[str, object] = {
        "status_code": None,
        "headers": None,
        "body": None,
        "owner": "0" * 32,
        "lease_expires_at": lease_ends,
    }
    if not after_commit:
        values.update(applied_at=None, answer_status=None, answer_location=None)
    database = Database(settings)
    try:
        with database.session() as session:
            session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == key).values(**values))
    finally:
        database.dispose()


def test_a_claim_left_by_a_crashed_process_expires(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    first = create(client, tenant.analyst, "crash-1", name="crashed")
    assert first[0] == 201
    client.delete(f"/api/v1/detectors/{first[1]['id']}", headers=tenant.analyst)
    as_left_by_a_crash(settings, "crash-1", lease_ends=utcnow() + timedelta(minutes=5))
    assert create(client, tenant.analyst, "crash-1", name="crashed")[0] == 409  # a live claim: still in progress
    as_left_by_a_crash(settings, "crash-1", lease_ends=utcnow() - timedelta(seconds=1))
    status, body = create(client, tenant.analyst, "crash-1", name="crashed")
    assert status == 201  # the lease ran out: the retry does the write
    assert body["id"] != first[1]["id"]
    replay = client.post(
        "/api/v1/detectors",
        json={"name": "crashed", "algorithm": "ecod"},
        headers={**tenant.analyst, "Idempotency-Key": "crash-1"},
    )
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json()["id"] == body["id"]


def test_old_records_are_pruned_by_housekeeping_not_by_requests(settings: Settings) -> None:
    database = Database(settings)
    try:
        migrate(settings, database)  # as the schema's owner on PostgreSQL
        store = IdempotencyStore(database)
        assert isinstance(store.claim(principal="user:a", key="old", fingerprint="f", lease_s=60), Claim)
        with database.session() as session:
            session.execute(update(IdempotencyRecord).values(created_at=utcnow() - RETENTION - timedelta(minutes=1)))
        # A request does no cleanup (a claim of another key leaves the old record alone)…
        assert isinstance(store.claim(principal="user:a", key="new", fingerprint="f", lease_s=60), Claim)
        assert len(_records(settings)) == 2
        # …housekeeping does.
        assert store.prune() == 1
        assert [record.key for record in _records(settings)] == ["new"]
    finally:
        database.dispose()

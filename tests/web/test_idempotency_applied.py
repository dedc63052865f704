"""Exactly once across a crash: a claimed request's write marks its idempotency record applied in the write's own
transaction, so the retry that finds the answer missing reads the result back instead of writing again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from tests.conftest import Tenant, wait_for_job
from tests.web.test_idempotency import as_left_by_a_crash
from vigil.app import migrate
from vigil.config import Settings
from vigil.core.database import Database, utcnow
from vigil.core.errors import ClaimTakenOver
from vigil.core.idempotency import Applied, Claim, IdempotencyRecord, IdempotencyStore
from vigil.web.idempotency_applied import CURRENT, PendingKey, track_writes

CSV = b"a,b\n1,2\n3,4\n5,6\n7,8\n"


def _record(settings: Settings, key: str) -> IdempotencyRecord:
    database = Database(settings)
    try:
        with database.session() as session:
            return session.scalars(select(IdempotencyRecord).where(IdempotencyRecord.key == key)).one()
    finally:
        database.dispose()


def _crashed_after_commit(settings: Settings, key: str) -> None:
    as_left_by_a_crash(settings, key, lease_ends=utcnow() - timedelta(seconds=1), after_commit=True)


def _post_detector(client: TestClient, tenant: Tenant, key: str) -> tuple[int, dict[str, object], dict[str, str]]:
    response = client.post(
        "/api/v1/detectors",
        json={"name": "once", "algorithm": "ecod"},
        headers={**tenant.analyst, "Idempotency-Key": key},
    )
    return response.status_code, response.json(), dict(response.headers)


def _upload(client: TestClient, tenant: Tenant, key: str, name: str = "once") -> tuple[int, dict[str, object]]:
    response = client.post(
        "/api/v1/datasets",
        content=CSV,
        params={"name": name},
        headers={**tenant.analyst, "Content-Type": "text/csv", "Idempotency-Key": key},
    )
    return response.status_code, response.json()


def test_a_write_marks_its_record_applied_with_where_its_answer_is(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    status, body, _ = _post_detector(client, tenant, "mark-1")
    assert status == 201
    record = _record(settings, "mark-1")
    assert record.applied_at is not None
    assert (record.answer_status, record.answer_location) == (201, f"/api/v1/detectors/{body['id']}")


def test_a_request_that_wrote_nothing_is_not_marked(client: TestClient, tenant: Tenant, settings: Settings) -> None:
    refused = client.post(
        "/api/v1/detectors",
        json={"name": "d", "algorithm": "magic"},
        headers={**tenant.analyst, "Idempotency-Key": "nothing-1"},
    )
    assert refused.status_code == 422
    assert _record(settings, "nothing-1").applied_at is None


def test_a_detector_created_before_a_crash_is_not_created_again(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    status, first, _ = _post_detector(client, tenant, "crash-detector")
    assert status == 201
    _crashed_after_commit(settings, "crash-detector")
    status, again, headers = _post_detector(client, tenant, "crash-detector")
    assert status == 201
    assert again["id"] == first["id"]
    assert headers["idempotent-replayed"] == "true"
    assert headers["location"] == f"/api/v1/detectors/{first['id']}"
    assert len(client.get("/api/v1/detectors", headers=tenant.viewer).json()["items"]) == 1
    # Read back once, the answer is not kept: the next retry reads it back again, the same.
    assert _post_detector(client, tenant, "crash-detector")[1]["id"] == first["id"]


def test_an_upload_committed_before_a_crash_is_not_stored_again(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    status, first = _upload(client, tenant, "crash-upload")
    assert status == 201
    _crashed_after_commit(settings, "crash-upload")
    status, again = _upload(client, tenant, "crash-upload")
    assert (status, again["id"], again["rows"]) == (201, first["id"], 4)
    assert [d["id"] for d in client.get("/api/v1/datasets", headers=tenant.viewer).json()["items"]] == [first["id"]]


def test_a_training_enqueued_before_a_crash_is_not_enqueued_again(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    _, dataset = _upload(client, tenant, "train-data")
    _, detector, _ = _post_detector(client, tenant, "train-detector")
    train = {"dataset_id": dataset["id"]}
    headers = {**tenant.analyst, "Idempotency-Key": "crash-train"}
    first = client.post(f"/api/v1/detectors/{detector['id']}/train", json=train, headers=headers)
    assert first.status_code == 202
    wait_for_job(client, first.json()["id"], tenant.analyst)
    replayed = client.post(f"/api/v1/detectors/{detector['id']}/train", json=train, headers=headers)
    assert (replayed.status_code, replayed.json()) == (202, first.json())  # answered: the first answer, as it was
    _crashed_after_commit(settings, "crash-train")
    again = client.post(f"/api/v1/detectors/{detector['id']}/train", json=train, headers=headers)
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "succeeded"  # read back now: the job as it is
    versions = client.get(f"/api/v1/detectors/{detector['id']}/versions", headers=tenant.viewer).json()["items"]
    assert len(versions) == 1


def test_a_report_and_a_stream_made_before_a_crash_are_read_back(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    # A report's location carries its version in the query; a stream is read back like any resource.
    _, dataset = _upload(client, tenant, "report-data")
    headers = {**tenant.analyst, "Idempotency-Key": "crash-report"}
    first = client.post(f"/api/v1/datasets/{dataset['id']}/profile", json={}, headers=headers)
    assert first.status_code == 201, first.text
    _crashed_after_commit(settings, "crash-report")
    again = client.post(f"/api/v1/datasets/{dataset['id']}/profile", json={}, headers=headers)
    assert (again.status_code, again.json()["id"], again.json()["version"]) == (201, first.json()["id"], 1)

    stream = {"name": "s", "features": ["a", "b"]}
    headers = {**tenant.analyst, "Idempotency-Key": "crash-stream"}
    made = client.post("/api/v1/streams", json=stream, headers=headers)
    assert made.status_code == 201, made.text
    _crashed_after_commit(settings, "crash-stream")
    again = client.post("/api/v1/streams", json=stream, headers=headers)
    assert (again.status_code, again.json()["id"]) == (201, made.json()["id"])
    assert len(client.get("/api/v1/streams", headers=tenant.viewer).json()["items"]) == 1


def test_a_route_that_cannot_rebuild_its_answer_says_it_was_applied(
    client: TestClient, tenant: Tenant, settings: Settings
) -> None:
    # An API key's answer carries its secret, which is never kept: nothing to read back.
    headers = {**tenant.admin, "Idempotency-Key": "crash-key"}
    body = {"name": "ci", "scopes": ["datasets:read"]}
    assert client.post("/api/v1/api-keys", json=body, headers=headers).status_code == 201
    _crashed_after_commit(settings, "crash-key")
    again = client.post("/api/v1/api-keys", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/answer-lost")
    assert len(client.get("/api/v1/api-keys", headers=tenant.admin).json()["items"]) == 1


def test_an_answer_whose_recording_failed_is_still_sent(
    client: TestClient, tenant: Tenant, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The database goes between the write's commit and the recording of its answer: the answer is still the true
    # one, and is sent (it was a 503 for a committed write: retried, and applied again).
    def unavailable(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("UPDATE idempotency_records", {}, Exception("connection refused"))

    monkeypatch.setattr(IdempotencyStore, "finish", unavailable)
    status, first, _ = _post_detector(client, tenant, "unrecorded-1")
    assert status == 201
    monkeypatch.undo()
    _crashed_after_commit(settings, "unrecorded-1")  # its lease runs out, as it would
    status, again, _ = _post_detector(client, tenant, "unrecorded-1")
    assert (status, again["id"]) == (201, first["id"])


@pytest.fixture
def store(settings: Settings) -> Iterator[IdempotencyStore]:
    database = Database(settings)
    migrate(settings, database)
    track_writes(database.sessions)
    try:
        yield IdempotencyStore(database)
    finally:
        database.dispose()


def _claimed(store: IdempotencyStore, key: str) -> PendingKey:
    owner = store.claim(principal="user:a", key=key, fingerprint="f", lease_s=60)
    assert isinstance(owner, Claim)
    return PendingKey(
        key=key, fingerprint="f", path="/p", store=store, lease_s=60, admitted=True, principal="user:a", owner=owner
    )


def _write(store: IdempotencyStore, pending: PendingKey, marker: str) -> None:
    """A write on behalf of `pending`'s request (any row: here a record under another key)."""
    current = CURRENT.set(pending)
    try:
        with store.database.session() as session:
            session.add(
                IdempotencyRecord(principal="user:b", key=marker, fingerprint="w", created_at=utcnow(), status_code=201)
            )
    finally:
        CURRENT.reset(current)


def _exists(store: IdempotencyStore, key: str) -> bool:
    with store.database.session() as session:
        return session.get(IdempotencyRecord, ("user:b", key)) is not None


def test_a_request_whose_claim_was_taken_over_cannot_commit(store: IdempotencyStore) -> None:
    held = _claimed(store, "fenced")
    _write(store, held, "written-while-held")
    assert _exists(store, "written-while-held")

    late = _claimed(store, "late")
    with store.database.session() as session:  # its lease ran out and a retry took the claim over
        session.execute(update(IdempotencyRecord).where(IdempotencyRecord.key == "late").values(owner="f" * 32))
    with pytest.raises(ClaimTakenOver):
        _write(store, late, "written-after-takeover")
    assert not _exists(store, "written-after-takeover")


def test_an_applied_claim_given_up_stays_for_the_retry(store: IdempotencyStore) -> None:
    pending = _claimed(store, "given-up")
    _write(store, pending, "its-write")
    assert pending.owner is not None
    store.release(principal="user:a", key="given-up", owner=pending.owner)  # e.g. a 500 after the commit
    verdict = store.claim(principal="user:a", key="given-up", fingerprint="f", lease_s=60)
    assert verdict == Applied(status=None, location=None)  # not a new claim: the write is not run again
    # A claim given up before any write goes: the retry does the work.
    fresh = _claimed(store, "unwritten")
    assert fresh.owner is not None
    store.release(principal="user:a", key="unwritten", owner=fresh.owner)
    assert isinstance(store.claim(principal="user:a", key="unwritten", fingerprint="f", lease_s=60), Claim)

"""`blocking`: FastAPI reads a decorated endpoint as the original (parameters, validation, OpenAPI), and runs its body
in one worker thread — not the two hops of a plain `def` (the endpoint, then validating its answer). `quick_read`:
on a SQLite file, no hop at all — unless the read meets a lock, when it runs as `blocking` runs it."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import Depends, FastAPI, Query, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from tests.support.one_table import one_table_database
from vigil.core.database import Database
from vigil.web.endpoints import QUICK_PAGE_ROWS, blocking, quick_read


class Answer(BaseModel):
    n: int
    thread: str


def make_app(decorate: Callable[[Any], Any]) -> FastAPI:
    app = FastAPI()

    @app.get("/items")
    @decorate
    def items(n: Annotated[int, Query(ge=1, le=5)] = 1) -> Answer:
        """Items, counted."""
        return Answer(n=n, thread=threading.current_thread().name)

    return app


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hop to a worker thread, FastAPI's and ours (both go through anyio)."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        seen.append(getattr(func, "__name__", type(func).__name__))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return seen


def test_one_hop_and_the_same_contract(hops: list[str]) -> None:
    with TestClient(make_app(blocking)) as client:
        loop_thread = client.portal.call(lambda: threading.current_thread().name)  # type: ignore[arg-type, return-value]
        answer = client.get("/items", params={"n": 3})
        assert answer.json()["n"] == 3
        assert answer.json()["thread"] != loop_thread  # the body blocked a worker thread, not the event loop
        assert len(hops) == 1
        assert client.get("/items", params={"n": 9}).status_code == 422  # the query's bounds still hold
        plain = make_app(lambda endpoint: endpoint).openapi()
        assert client.app.openapi() == plain  # type: ignore[attr-defined]


def test_a_plain_def_costs_two_hops(hops: list[str]) -> None:
    """What `blocking` saves, and the proof that the hop counter sees FastAPI's hops."""
    with TestClient(make_app(lambda endpoint: endpoint)) as client:
        client.get("/items").raise_for_status()
    assert len(hops) == 2


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    built = one_table_database(tmp_path / "data")
    yield built
    built.dispose()


async def get_session(request: Request) -> Any:
    with request.app.state.sessions() as session:
        yield session


def read_app(sessions: Callable[[], Session], *, write: bool = False) -> FastAPI:
    app = FastAPI()
    app.state.sessions = sessions

    @app.get("/count")
    @quick_read
    def count(session: Annotated[Session, Depends(get_session)], limit: int = 1) -> Answer:
        if write:
            session.execute(text("INSERT INTO t VALUES (2)"))
        n = session.execute(text("SELECT count(*) FROM t")).scalar_one()
        return Answer(n=n, thread=threading.current_thread().name)

    return app


def _loop_thread(client: TestClient) -> str:
    return client.portal.call(lambda: threading.current_thread().name)  # type: ignore[arg-type, return-value]


def test_a_quick_read_runs_on_the_event_loop_with_no_hop(database: Database, hops: list[str]) -> None:
    with TestClient(read_app(database.sessions)) as client:
        answer = client.get("/count").json()
        assert answer == {"n": 1, "thread": _loop_thread(client)}
    assert hops == []


def test_a_page_too_large_to_build_on_the_loop_takes_one_hop(database: Database, hops: list[str]) -> None:
    with TestClient(read_app(database.sessions)) as client:
        loop = _loop_thread(client)
        assert client.get("/count", params={"limit": QUICK_PAGE_ROWS}).json()["thread"] == loop
        assert hops == []
        assert client.get("/count", params={"limit": QUICK_PAGE_ROWS + 1}).json()["thread"] != loop
        assert len(hops) == 1


def test_a_quick_read_that_meets_a_lock_waits_for_it_in_a_worker_thread(database: Database, hops: list[str]) -> None:
    """A writer in exclusive locking mode keeps every reader out: the quick read is refused at once, and the same
    read runs again on the request's own session in a worker thread, which waits until the lock is let go."""
    assert database.engine.url.database is not None
    holder = sqlite3.connect(database.engine.url.database, timeout=0, check_same_thread=False)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO t VALUES (2)")
    holder.commit()  # exclusive mode: the lock stays held after the commit
    release = threading.Timer(0.3, holder.close)
    release.start()
    try:
        with TestClient(read_app(database.sessions)) as client:
            answer = client.get("/count").json()
            assert answer["n"] == 2  # what the writer committed, read once it let go
            assert answer["thread"] != _loop_thread(client)
        assert len(hops) == 1
    finally:
        release.join()


def test_a_quick_read_that_fails_otherwise_fails(database: Database, hops: list[str]) -> None:
    """Only contention is retried: the quick session is read-only, so a write is refused, and that is the answer."""
    with TestClient(read_app(database.sessions, write=True)) as client, pytest.raises(OperationalError):
        client.get("/count")
    assert hops == []


def test_without_quick_reads_the_read_takes_one_hop(database: Database, hops: list[str]) -> None:
    """A session that lends no quick reads (PostgreSQL's, or one not made by the database) reads in a worker thread."""
    with TestClient(read_app(lambda: Session(database.engine))) as client:
        answer = client.get("/count").json()
        assert answer["n"] == 1
        assert answer["thread"] != _loop_thread(client)
    assert len(hops) == 1


def test_a_quick_read_needs_its_session_and_limit_parameters() -> None:
    def no_session(limit: int) -> int:
        return limit

    def no_limit(session: Session) -> int:
        return 0

    for endpoint in (no_session, no_limit):
        with pytest.raises(TypeError, match="'session' and 'limit'"):
            quick_read(endpoint)

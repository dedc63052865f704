"""`blocking`: FastAPI reads a decorated endpoint as the original (parameters, validation, OpenAPI), and runs its body
in one worker thread — not the two hops of a plain `def` (the endpoint, then validating its answer)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import FastAPI, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel

from vigil.web.endpoints import blocking


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

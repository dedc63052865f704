"""FastAPI dependencies for the plumbing, as named types (`SessionDep`, `ContextDep`, `BlobsDep`, `SettingsDep`),
and where a request comes from (`client_info`).

They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool, and a hop to a thread and
back costs more than these functions do — under load, far more (each hop waits for the GIL behind CPU-bound work).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.clientinfo import MAX_USER_AGENT, ClientInfo, Networks, client_ip
from vigil.core.context import AppContext


async def get_context(connection: HTTPConnection) -> AppContext:
    context: AppContext = connection.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(connection: HTTPConnection) -> AsyncIterator[Session]:
    """One session per request. Services commit their own use cases; anything left uncommitted is rolled back.

    Making a session opens no connection; closing one that never began a transaction does no I/O either. A used
    session on a database server is closed in a worker thread (its rollback may wait on the network, or on a server
    that stopped answering). On SQLite ending a transaction is a call into the library that takes no lock and
    waits for nothing, so it is done here: a hop to a worker thread and back costs more than the rollback
    (measured in process: ~110 us of a ~1.2 ms list request).

    It reads the app's context itself rather than through `ContextDep`: FastAPI solves a sub-dependency again
    wherever its parent is declared, even when its value is cached (a list route declares the session twice: for
    its caller and for itself), and each solving costs more than reading an attribute.
    """
    context: AppContext = connection.app.state.context
    session = context.database.sessions()
    try:
        yield session
    finally:
        if session.in_transaction() and session.get_bind().dialect.name != "sqlite":
            await anyio.to_thread.run_sync(session.close)
        else:
            session.close()


async def get_settings(context: ContextDep) -> Settings:
    return context.settings


async def get_blobs(context: ContextDep) -> BlobStore:
    return context.blobs


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]


def client_info(connection: HTTPConnection, trusted: Networks) -> ClientInfo:
    peer = connection.client.host if connection.client else None
    agent = connection.headers.get("user-agent")
    return ClientInfo(
        ip=client_ip(peer, connection.headers.get("x-forwarded-for"), trusted),
        user_agent=agent[:MAX_USER_AGENT] if agent else None,
    )

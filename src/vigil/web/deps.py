"""FastAPI dependencies for the plumbing, as named types (`SessionDep`, `ContextDep`, `BlobsDep`, `SettingsDep`),
and where a request comes from (`client_info`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from vigil.config import Settings
from vigil.core.blobs import BlobStore
from vigil.core.clientinfo import MAX_USER_AGENT, ClientInfo, Networks, client_ip
from vigil.core.context import AppContext


def get_context(connection: HTTPConnection) -> AppContext:
    context: AppContext = connection.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


def get_session(context: ContextDep) -> Iterator[Session]:
    """One session per request. Services commit their own use cases; anything left uncommitted is rolled back."""
    with context.database.sessions() as session:
        yield session


def get_settings(context: ContextDep) -> Settings:
    return context.settings


def get_blobs(context: ContextDep) -> BlobStore:
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

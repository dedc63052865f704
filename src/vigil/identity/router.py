"""Identity routes: tokens and sessions, the caller and their password, tenants (superadmin), and the tenant admin's
users, API keys, audit log and security settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query, Request, Response, status
from pydantic import ValidationError

from vigil.core.errors import InvalidInput
from vigil.core.pagination import Page
from vigil.identity.dependencies import ClientDep, IdentityDep, enforce, require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.identity.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    AuditEventPublic,
    MePublic,
    PasswordChange,
    RefreshRequest,
    SessionPublic,
    TokenPublic,
    TokenRequest,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from vigil.identity.service import ApiKeyService, AuditService, UserService
from vigil.web.created import CREATED, created
from vigil.web.deps import SessionDep
from vigil.web.endpoints import blocking
from vigil.web.idempotency import withhold_secret
from vigil.web.idempotency_applied import replay_created
from vigil.web.paging import Cursor, Limit
from vigil.web.routing import IndexedRouter

USER = "/api/v1/users/{id}"
router = IndexedRouter()
# Ids are server-made (`usr_…`): anything else is refused before it reaches a query.
Id = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
TOKEN_BODY_HELP = "The body must be JSON {email, password} or an OAuth2 password form (username, password)."


@router.post(
    "/auth/token",
    tags=["auth"],
    summary="Log in with email and password: a new session",
    responses={429: {"description": "Too many requests, or logins locked out after failures (Retry-After)"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": TokenRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["username", "password"],
                        "properties": {"username": {"type": "string"}, "password": {"type": "string"}},
                    }
                },
            },
        }
    },
)
async def issue_token(request: Request, session: SessionDep, identity: IdentityDep, client: ClientDep) -> TokenPublic:
    enforce(request, identity.limiter.hit(identity.limiter.login_per_ip, "login", client.ip), "for logins per address")
    data = await _token_request(request)
    return identity.auth(session).login(email=str(data.email), password=data.password, client=client)


async def _token_request(request: Request) -> TokenRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = await request.form()
            raw = {"email": form.get("username") or form.get("email"), "password": form.get("password")}
        else:
            raw = await request.json()
        return TokenRequest.model_validate(raw)
    except (ValueError, ValidationError, RecursionError) as exc:
        raise InvalidInput(TOKEN_BODY_HELP) from exc


@router.post("/auth/refresh", tags=["auth"], summary="Exchange a refresh token for a new pair (the old one is spent)")
def refresh_token(data: RefreshRequest, session: SessionDep, identity: IdentityDep, client: ClientDep) -> TokenPublic:
    return identity.auth(session).refresh(refresh_token=data.refresh_token, client=client)


@router.post("/auth/logout", tags=["auth"], status_code=204, summary="End the caller's session")
def logout(
    principal: Annotated[Principal, require(Permission.ME_WRITE)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
) -> Response:
    identity.auth(session).logout(principal=principal, client=client)
    return Response(status_code=204)


@router.get("/auth/sessions", tags=["auth"], summary="The caller's live sessions, newest first")
@blocking
def list_sessions(
    principal: Annotated[Principal, require(Permission.ME_READ)],
    session: SessionDep,
    identity: IdentityDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[SessionPublic]:
    items, next_cursor = identity.auth(session).list_sessions(principal=principal, limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.delete(
    "/auth/sessions/{session_id}", tags=["auth"], status_code=204, summary="End one of the caller's sessions"
)
def end_session(
    session_id: Id,
    principal: Annotated[Principal, require(Permission.ME_WRITE)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
) -> Response:
    identity.auth(session).end_session(principal=principal, session_id=session_id, client=client)
    return Response(status_code=204)


@router.get("/me", tags=["auth"], summary="The caller: user, tenant, role and permissions")
async def me(
    principal: Annotated[Principal, require(Permission.WHOAMI)], session: SessionDep, identity: IdentityDep
) -> MePublic:
    # Async: a cached description costs no database read and no hop to a worker thread.
    return await identity.describe(session, principal)


@router.post(
    "/me/password",
    tags=["auth"],
    status_code=204,
    summary="Change one's password (needs the current one; ends all of one's sessions)",
)
def change_password(
    data: PasswordChange,
    principal: Annotated[Principal, require(Permission.ME_WRITE)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
) -> Response:
    identity.auth(session).change_password(principal=principal, data=data, client=client)
    return Response(status_code=204)


@router.post("/users", tags=["users"], status_code=status.HTTP_201_CREATED, responses=CREATED, summary="Create a user")
def create_user(
    data: UserCreate,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
    response: Response,
) -> UserPublic:
    replay_created("users", USER)
    service = UserService(session=session, principal=principal, passwords=identity.passwords, client=client)
    return created(response, USER, service.create(data=data))


@router.get("/users", tags=["users"], summary="List the users of the caller's tenant")
@blocking
def list_users(
    principal: Annotated[Principal, require(Permission.USERS_READ)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[UserPublic]:
    service = UserService(session=session, principal=principal, passwords=identity.passwords, client=client)
    items, next_cursor = service.list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/users/{user_id}", tags=["users"], summary="Get a user")
def get_user(
    user_id: Id,
    principal: Annotated[Principal, require(Permission.USERS_READ)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
) -> UserPublic:
    return UserService(session=session, principal=principal, passwords=identity.passwords, client=client).get(
        user_id=user_id
    )


@router.patch("/users/{user_id}", tags=["users"], summary="Change a user's role or disable them")
def update_user(
    user_id: Id,
    data: UserUpdate,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
) -> UserPublic:
    service = UserService(session=session, principal=principal, passwords=identity.passwords, client=client)
    return service.update(user_id=user_id, data=data)


@router.delete("/users/{user_id}", tags=["users"], status_code=204, summary="Delete a user")
def delete_user(
    user_id: Id,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
    session: SessionDep,
    identity: IdentityDep,
    client: ClientDep,
) -> Response:
    UserService(session=session, principal=principal, passwords=identity.passwords, client=client).delete(
        user_id=user_id
    )
    return Response(status_code=204)


@router.post(
    "/api-keys",
    tags=["api keys"],
    status_code=status.HTTP_201_CREATED,
    responses=CREATED,
    summary="Create an API key (the key is in this answer only)",
)
def create_api_key(
    request: Request,
    data: ApiKeyCreate,
    principal: Annotated[Principal, require(Permission.API_KEYS_MANAGE)],
    session: SessionDep,
    client: ClientDep,
    response: Response,
) -> ApiKeyCreated:
    key = ApiKeyService(session=session, principal=principal, client=client).create(data=data)
    # The key is in this answer only: an idempotent retry is told what was made, never given the secret again.
    withhold_secret(request, resource="API key", resource_id=key.id)
    return created(response, "/api/v1/api-keys/{id}", key)


@router.get("/api-keys", tags=["api keys"], summary="The tenant's API keys (without their secrets), newest first")
@blocking
def list_api_keys(
    principal: Annotated[Principal, require(Permission.API_KEYS_MANAGE)],
    session: SessionDep,
    client: ClientDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[ApiKeyPublic]:
    items, next_cursor = ApiKeyService(session=session, principal=principal, client=client).list(
        limit=limit, cursor=cursor
    )
    return Page(items=items, next_cursor=next_cursor)


@router.delete("/api-keys/{key_id}", tags=["api keys"], status_code=204, summary="Revoke an API key")
def revoke_api_key(
    key_id: Id,
    principal: Annotated[Principal, require(Permission.API_KEYS_MANAGE)],
    session: SessionDep,
    client: ClientDep,
) -> Response:
    ApiKeyService(session=session, principal=principal, client=client).revoke(key_id=key_id)
    return Response(status_code=204)


@router.get("/audit-events", tags=["audit"], summary="The tenant's audit log, newest first")
@blocking
def list_audit_events(
    principal: Annotated[Principal, require(Permission.AUDIT_READ)],
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    action: Annotated[str | None, Query(max_length=64, pattern=r"^[a-z_.]+$")] = None,
) -> Page[AuditEventPublic]:
    items, next_cursor = AuditService(session=session, principal=principal).list(
        limit=limit, cursor=cursor, action=action
    )
    return Page(items=items, next_cursor=next_cursor)

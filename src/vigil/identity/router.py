"""Identity routes: tokens, the caller, tenants (superadmin) and users (tenant admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError

from vigil.core.deps import BlobsDep, SessionDep
from vigil.core.errors import InvalidInput
from vigil.core.pagination import Page
from vigil.identity.dependencies import IdentityDep, require
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.identity.schemas import (
    MePublic,
    TenantCreate,
    TenantPublic,
    TenantUpdate,
    TokenPublic,
    TokenRequest,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from vigil.identity.service import AuthService, TenantService, UserService

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200)]
TOKEN_BODY_HELP = "The body must be JSON {email, password} or an OAuth2 password form (username, password)."


@router.post(
    "/auth/token",
    tags=["auth"],
    summary="Log in with email and password",
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
async def issue_token(request: Request, session: SessionDep, identity: IdentityDep) -> TokenPublic:
    data = await _token_request(request)
    auth = AuthService(session=session, passwords=identity.passwords, tokens=identity.tokens)
    return auth.login(email=str(data.email), password=data.password)


async def _token_request(request: Request) -> TokenRequest:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type == "application/x-www-form-urlencoded":
            form = await request.form()
            raw = {"email": form.get("username") or form.get("email"), "password": form.get("password")}
        else:
            raw = await request.json()
        return TokenRequest.model_validate(raw)
    except (ValueError, ValidationError) as exc:
        raise InvalidInput(TOKEN_BODY_HELP) from exc


@router.get("/me", tags=["auth"], summary="The caller: user, tenant, role and permissions")
def me(
    principal: Annotated[Principal, require(Permission.ME_READ)], session: SessionDep, identity: IdentityDep
) -> MePublic:
    return AuthService(session=session, passwords=identity.passwords, tokens=identity.tokens).describe(principal)


@router.post("/tenants", tags=["tenants"], status_code=status.HTTP_201_CREATED, summary="Create a tenant")
def create_tenant(
    data: TenantCreate,
    _: Annotated[Principal, require(Permission.TENANTS_MANAGE)],
    session: SessionDep,
    blobs: BlobsDep,
) -> TenantPublic:
    return TenantService(session=session, blobs=blobs).create(data=data)


@router.get("/tenants", tags=["tenants"], summary="List tenants")
def list_tenants(
    _: Annotated[Principal, require(Permission.TENANTS_MANAGE)],
    session: SessionDep,
    blobs: BlobsDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[TenantPublic]:
    items, next_cursor = TenantService(session=session, blobs=blobs).list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/tenants/{tenant_id}", tags=["tenants"], summary="Get a tenant")
def get_tenant(
    tenant_id: str,
    _: Annotated[Principal, require(Permission.TENANTS_MANAGE)],
    session: SessionDep,
    blobs: BlobsDep,
) -> TenantPublic:
    return TenantService(session=session, blobs=blobs).get(tenant_id=tenant_id)


@router.patch("/tenants/{tenant_id}", tags=["tenants"], summary="Rename, suspend or resume a tenant")
def update_tenant(
    tenant_id: str,
    data: TenantUpdate,
    _: Annotated[Principal, require(Permission.TENANTS_MANAGE)],
    session: SessionDep,
    blobs: BlobsDep,
) -> TenantPublic:
    return TenantService(session=session, blobs=blobs).update(tenant_id=tenant_id, data=data)


@router.delete("/tenants/{tenant_id}", tags=["tenants"], status_code=204, summary="Delete a tenant and all its data")
def delete_tenant(
    tenant_id: str,
    _: Annotated[Principal, require(Permission.TENANTS_MANAGE)],
    session: SessionDep,
    blobs: BlobsDep,
) -> Response:
    TenantService(session=session, blobs=blobs).delete(tenant_id=tenant_id)
    return Response(status_code=204)


@router.post("/users", tags=["users"], status_code=status.HTTP_201_CREATED, summary="Create a user")
def create_user(
    data: UserCreate,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
    session: SessionDep,
    identity: IdentityDep,
) -> UserPublic:
    return UserService(session=session, principal=principal, passwords=identity.passwords).create(data=data)


@router.get("/users", tags=["users"], summary="List the users of the caller's tenant")
def list_users(
    principal: Annotated[Principal, require(Permission.USERS_READ)],
    session: SessionDep,
    identity: IdentityDep,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[UserPublic]:
    service = UserService(session=session, principal=principal, passwords=identity.passwords)
    items, next_cursor = service.list(limit=limit, cursor=cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.get("/users/{user_id}", tags=["users"], summary="Get a user")
def get_user(
    user_id: str,
    principal: Annotated[Principal, require(Permission.USERS_READ)],
    session: SessionDep,
    identity: IdentityDep,
) -> UserPublic:
    return UserService(session=session, principal=principal, passwords=identity.passwords).get(user_id=user_id)


@router.patch("/users/{user_id}", tags=["users"], summary="Change a user's role or disable them")
def update_user(
    user_id: str,
    data: UserUpdate,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
    session: SessionDep,
    identity: IdentityDep,
) -> UserPublic:
    service = UserService(session=session, principal=principal, passwords=identity.passwords)
    return service.update(user_id=user_id, data=data)


@router.delete("/users/{user_id}", tags=["users"], status_code=204, summary="Delete a user")
def delete_user(
    user_id: str,
    principal: Annotated[Principal, require(Permission.USERS_MANAGE)],
    session: SessionDep,
    identity: IdentityDep,
) -> Response:
    UserService(session=session, principal=principal, passwords=identity.passwords).delete(user_id=user_id)
    return Response(status_code=204)

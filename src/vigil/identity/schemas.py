"""Identity request and response models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from vigil.core.names import Name, check_printable
from vigil.identity.permissions import API_KEY_SCOPES, READ_ONLY_SCOPE, Permission, Role

Password = Annotated[str, Field(min_length=1, max_length=1024)]
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _email(value: str) -> str:
    # An account name in email form, not a deliverable address: on-premises domains such as `.local` or `.test`
    # (which RFC-strict validators refuse as special-use) are common for platform accounts.
    if not _EMAIL_SHAPE.fullmatch(value):
        raise ValueError("not an email address (name@domain)")
    return value.lower()


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    AfterValidator(check_printable),
    AfterValidator(_email),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    email: Email
    password: Password


class TokenPublic(BaseModel):
    access_token: str
    refresh_token: str = Field(description="Opaque, single-use: POST it to /auth/refresh for the next pair.")
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds until the access token expires.")


class RefreshRequest(Strict):
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class SessionPublic(BaseModel):
    id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime = Field(description="The absolute end of the session.")
    idle_expires_at: datetime = Field(description="When it ends unless used before.")
    ip: str | None
    user_agent: str | None
    current: bool = Field(description="Whether this is the session of the token that asked.")


class PasswordChange(Strict):
    current_password: Password
    new_password: Password


class ApiKeyRateLimit(Strict):
    requests: Annotated[int, Field(ge=1, le=1_000_000)]
    window_s: Annotated[int, Field(ge=1, le=86_400)]


def _scope(value: str) -> str:
    if value != READ_ONLY_SCOPE and value not in {p.value for p in API_KEY_SCOPES}:
        allowed = ", ".join(sorted([READ_ONLY_SCOPE, *(p.value for p in API_KEY_SCOPES)]))
        raise ValueError(f"unknown scope; the scopes are: {allowed}")
    return value


Scope = Annotated[str, StringConstraints(max_length=64), AfterValidator(_scope)]


class ApiKeyCreate(Strict):
    name: Name
    scopes: Annotated[
        list[Scope],
        Field(
            min_length=1,
            max_length=32,
            description="Permissions the key has, e.g. datasets:write, detect, streams:write, or read-only.",
        ),
    ]
    expires_at: AwareDatetime | None = Field(default=None, description="When the key stops working (none: never).")
    rate_limit: ApiKeyRateLimit | None = Field(
        default=None, description="A limit of this key's own, below the server's per-key limit."
    )


class ApiKeyPublic(BaseModel):
    id: str
    name: str
    prefix: str = Field(description="The key's public beginning, to recognise it; the rest is never shown again.")
    scopes: list[str]
    rate_limit: ApiKeyRateLimit | None
    created_by: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The secret key: shown this once, stored only as a hash.")


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    created_at: datetime
    action: str
    outcome: str
    actor_id: str | None
    actor: str | None
    target_type: str | None
    target_id: str | None
    ip: str | None
    user_agent: str | None
    details: dict[str, Any]


class UserCreate(Strict):
    email: Email
    password: Password
    role: Role = Role.ANALYST
    tenant_id: str | None = Field(default=None, description="Superadmin only: the tenant to create the user in.")


class UserUpdate(Strict):
    role: Role | None = None
    is_active: bool | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    email: str
    role: Role
    tenant_id: str
    is_active: bool
    created_at: datetime


class TenantRef(BaseModel):
    id: str
    name: str


class ApiKeyRef(BaseModel):
    id: str
    name: str
    prefix: str


class MePublic(BaseModel):
    user: UserPublic = Field(description="The user; for an API key, the user who made it (the key acts for them).")
    tenant: TenantRef
    role: Role = Field(description="The user's role (for an API key, its creator's: the most the key may do).")
    permissions: list[Permission] = Field(description="What this credential may do (a key: its effective scopes).")
    api_key: ApiKeyRef | None = Field(default=None, description="Set when the caller is an API key.")

"""Identity request and response models."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from vigil.identity.permissions import Permission, Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")


def _email(value: str) -> str:
    # An account name in email form, not a deliverable address: on-premises domains such as `.local` or `.test`
    # (which RFC-strict validators refuse as special-use) are common for platform accounts.
    if not _EMAIL_SHAPE.fullmatch(value):
        raise ValueError("not an email address (name@domain)")
    return value.lower()


Email = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=254), AfterValidator(_email)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    email: Email
    password: Password


class TokenPublic(BaseModel):
    access_token: str
    refresh_token: str | None = None
    token_type: str = "bearer"
    expires_in: int


class TenantCreate(Strict):
    name: Name


class TenantUpdate(Strict):
    name: Name | None = None
    status: Annotated[str, Field(pattern="^(active|suspended)$")] | None = None


class TenantPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    status: str
    created_at: datetime
    updated_at: datetime


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


class MePublic(BaseModel):
    user: UserPublic
    tenant: TenantRef
    role: Role
    permissions: list[Permission]

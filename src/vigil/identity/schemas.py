"""Identity request and response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from vigil.identity.permissions import Permission, Role

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    email: EmailStr
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
    email: EmailStr
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

"""Who is calling: a user (through a session's access token) or an API key, their tenant and permissions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from vigil.core.database import TenantScope
from vigil.identity.permissions import API_KEY_IMPLICIT, Permission, Role, permissions_of


@dataclass(frozen=True, slots=True)
class Principal:
    """`user_id` is the acting user, or the API key's id for a machine (so `created_by` names who did it).

    A user's permissions are their role's; an API key's are exactly its scopes (fixed, at creation, to a subset
    of its creator's role's permissions).
    """

    user_id: str
    email: str
    tenant_id: str
    role: Role
    session_id: str | None = None
    api_key_id: str | None = None
    scopes: frozenset[Permission] | None = None
    key_rate_limit: tuple[int, int] | None = None  # (requests, window in seconds) set on the key
    tenant_calls_per_hour: int | None = None  # the tenant's `api_calls_per_hour` quota
    # When the credential stops being valid by itself (token or session expiry, key expiry), or a session's use is
    # next due to be recorded: a cache keeps no principal past it.
    credential_expires_at: datetime | None = None

    @property
    def scope(self) -> TenantScope:
        return TenantScope(self.tenant_id)

    @property
    def permissions(self) -> frozenset[Permission]:
        if self.scopes is not None:
            return self.scopes | API_KEY_IMPLICIT
        return permissions_of(self.role)

    @property
    def is_api_key(self) -> bool:
        return self.api_key_id is not None

    @property
    def is_superadmin(self) -> bool:
        return self.role is Role.SUPERADMIN and not self.is_api_key

    @property
    def rate_limit_subject(self) -> str:
        return f"key:{self.api_key_id}" if self.api_key_id else f"user:{self.user_id}"

    def describe(self) -> str:
        return "this API key" if self.is_api_key else f"role {self.role.value!r}"

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

"""Roles, API-key scopes and the permission table: the one place that says who may do what."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"
    SUPERADMIN = "superadmin"


TENANT_ROLES = (Role.ADMIN, Role.ANALYST, Role.VIEWER)


class Permission(StrEnum):
    WHOAMI = "whoami:read"  # GET /me: every user and every API key may ask who it is
    ME_READ = "me:read"
    ME_WRITE = "me:write"  # one's own password and sessions
    TENANTS_MANAGE = "tenants:manage"
    TENANT_SETTINGS_MANAGE = "tenant-settings:manage"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    API_KEYS_MANAGE = "api-keys:manage"
    AUDIT_READ = "audit:read"
    DATASETS_READ = "datasets:read"
    DATASETS_WRITE = "datasets:write"
    DETECTORS_READ = "detectors:read"
    DETECTORS_WRITE = "detectors:write"
    DETECT = "detect"
    JOBS_READ = "jobs:read"
    JOBS_MANAGE = "jobs:manage"
    ALGORITHMS_READ = "algorithms:read"
    STREAMS_READ = "streams:read"
    STREAMS_WRITE = "streams:write"


_VIEWER = frozenset(
    {
        Permission.WHOAMI,
        Permission.ME_READ,
        Permission.ME_WRITE,
        Permission.DATASETS_READ,
        Permission.DETECTORS_READ,
        Permission.JOBS_READ,
        Permission.ALGORITHMS_READ,
        Permission.STREAMS_READ,
    }
)
_ANALYST = _VIEWER | {
    Permission.DATASETS_WRITE,
    Permission.DETECTORS_WRITE,
    Permission.DETECT,
    Permission.JOBS_MANAGE,
    Permission.STREAMS_WRITE,
}
_ADMIN = _ANALYST | {
    Permission.USERS_READ,
    Permission.USERS_MANAGE,
    Permission.API_KEYS_MANAGE,
    Permission.AUDIT_READ,
    Permission.TENANT_SETTINGS_MANAGE,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.ANALYST: _ANALYST,
    Role.ADMIN: _ADMIN,
    Role.SUPERADMIN: frozenset(Permission),
}

# What a machine may be given: data and detection work, never identity management or a user's own account.
API_KEY_SCOPES: frozenset[Permission] = frozenset(
    {
        Permission.DATASETS_READ,
        Permission.DATASETS_WRITE,
        Permission.DETECTORS_READ,
        Permission.DETECTORS_WRITE,
        Permission.DETECT,
        Permission.JOBS_READ,
        Permission.JOBS_MANAGE,
        Permission.ALGORITHMS_READ,
        Permission.STREAMS_READ,
        Permission.STREAMS_WRITE,
    }
)
# What every key has whatever its scopes: asking who it is (GET /me).
API_KEY_IMPLICIT: frozenset[Permission] = frozenset({Permission.WHOAMI})
READ_ONLY_SCOPE = "read-only"  # shorthand for every readable scope
READ_ONLY_SCOPES: frozenset[Permission] = frozenset(p for p in API_KEY_SCOPES if p.value.endswith(":read"))


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]

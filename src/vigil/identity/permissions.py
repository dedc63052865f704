"""Roles and the permission table: the one place that says who may do what."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"
    SUPERADMIN = "superadmin"


TENANT_ROLES = (Role.ADMIN, Role.ANALYST, Role.VIEWER)


class Permission(StrEnum):
    ME_READ = "me:read"
    TENANTS_MANAGE = "tenants:manage"
    USERS_READ = "users:read"
    USERS_MANAGE = "users:manage"
    DATASETS_READ = "datasets:read"
    DATASETS_WRITE = "datasets:write"
    DETECTORS_READ = "detectors:read"
    DETECTORS_WRITE = "detectors:write"
    DETECT = "detect"
    JOBS_READ = "jobs:read"
    JOBS_MANAGE = "jobs:manage"
    ALGORITHMS_READ = "algorithms:read"


_VIEWER = frozenset(
    {
        Permission.ME_READ,
        Permission.DATASETS_READ,
        Permission.DETECTORS_READ,
        Permission.JOBS_READ,
        Permission.ALGORITHMS_READ,
    }
)
_ANALYST = _VIEWER | {
    Permission.DATASETS_WRITE,
    Permission.DETECTORS_WRITE,
    Permission.DETECT,
    Permission.JOBS_MANAGE,
}
_ADMIN = _ANALYST | {Permission.USERS_READ, Permission.USERS_MANAGE}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: _VIEWER,
    Role.ANALYST: _ANALYST,
    Role.ADMIN: _ADMIN,
    Role.SUPERADMIN: frozenset(Permission),
}


def permissions_of(role: Role) -> frozenset[Permission]:
    return ROLE_PERMISSIONS[role]

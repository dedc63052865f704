"""Who is calling, as FastAPI dependencies: `CurrentPrincipal`, and `require(permission)` that each route declares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from vigil.config import Settings
from vigil.core.deps import SessionDep
from vigil.core.errors import Forbidden, Unauthorized
from vigil.identity.passwords import Passwords
from vigil.identity.permissions import Permission
from vigil.identity.principal import Principal
from vigil.identity.service import AuthService
from vigil.identity.tokens import TokenService


@dataclass
class IdentityRuntime:
    """Identity's per-app singletons (the password hasher is costly to build)."""

    passwords: Passwords
    tokens: TokenService

    @classmethod
    def build(cls, *, settings: Settings, key: bytes) -> IdentityRuntime:
        return cls(passwords=Passwords(settings), tokens=TokenService(settings=settings, key=key))

    def principal_key(self, headers: dict[bytes, bytes]) -> str | None:
        """Whose request this is, for plumbing such as idempotency (no database, signature checked)."""
        auth = headers.get(b"authorization", b"").decode("latin-1")
        scheme, _, token = auth.partition(" ")
        return self.tokens.subject_of(token) if scheme.lower() == "bearer" and token else None


def get_identity(connection: HTTPConnection) -> IdentityRuntime:
    runtime: IdentityRuntime = connection.app.state.identity
    return runtime


IdentityDep = Annotated[IdentityRuntime, Depends(get_identity)]
_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/token")


def get_principal(
    session: SessionDep,
    identity: IdentityDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send an access token as 'Authorization: Bearer <token>'.")
    auth = AuthService(session=session, passwords=identity.passwords, tokens=identity.tokens)
    return auth.authenticate(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Any:
    """`principal: Annotated[Principal, require(Permission.X)]` — the route's declared permission."""

    def check(principal: CurrentPrincipal) -> Principal:
        if not principal.can(permission):
            raise Forbidden(
                f"This needs the {permission.value!r} permission, which role {principal.role.value!r} lacks."
            )
        return principal

    check.required_permission = permission  # type: ignore[attr-defined]  # read by the route-permission test
    return Depends(check)

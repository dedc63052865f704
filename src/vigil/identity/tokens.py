"""Access tokens: short-lived JWTs signed with one pinned algorithm and checked for issuer and audience."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from vigil.config import Settings
from vigil.core.errors import Unauthorized

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "iss", "aud", "sub", "jti", "tid", "role"]


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    tenant_id: str
    role: str
    token_id: str
    expires_at: datetime


class TokenService:
    def __init__(self, *, settings: Settings, key: bytes) -> None:
        self.settings = settings
        self.key = key

    def issue(self, *, user_id: str, tenant_id: str, role: str) -> tuple[str, int]:
        now = datetime.now(UTC)
        ttl = self.settings.access_token_ttl_s
        claims = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": user_id,
            "tid": tenant_id,
            "role": role,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=ttl),
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM), ttl

    def decode(self, token: str) -> AccessClaims:
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": REQUIRED_CLAIMS},
                leeway=5,
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("The access token is invalid.") from exc
        return AccessClaims(
            user_id=str(claims["sub"]),
            tenant_id=str(claims["tid"]),
            role=str(claims["role"]),
            token_id=str(claims["jti"]),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )

    def subject_of(self, token: str) -> str | None:
        """The user a token names, or None; for plumbing that only needs to know whose request this is."""
        try:
            return self.decode(token).user_id
        except Unauthorized:
            return None

"""Access tokens: short-lived JWTs signed with one pinned algorithm (HS256), checked for issuer and audience,
and naming the session they belong to (`sid`), so ending the session ends them (RFC 8725 practices)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from vigil.config import Settings
from vigil.core.errors import Unauthorized

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "nbf", "iss", "aud", "sub", "jti", "tid", "role", "sid"]
TOKEN_TYPE = "at+jwt"  # RFC 9068: an access token cannot pass for another kind of JWT signed with the same key


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    tenant_id: str
    role: str
    session_id: str
    token_id: str
    expires_at: datetime


class TokenService:
    def __init__(self, *, settings: Settings, key: bytes) -> None:
        self.settings = settings
        self.key = key

    def issue(
        self, *, user_id: str, tenant_id: str, role: str, session_id: str, ttl_s: int | None = None
    ) -> tuple[str, int]:
        now = datetime.now(UTC)
        ttl = min(ttl_s or self.settings.access_token_ttl_s, self.settings.access_token_ttl_s)
        claims = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": user_id,
            "tid": tenant_id,
            "role": role,
            "sid": session_id,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + timedelta(seconds=ttl),
        }
        return jwt.encode(claims, self.key, algorithm=ALGORITHM, headers={"typ": TOKEN_TYPE}), ttl

    def decode(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("typ") != TOKEN_TYPE:
                raise jwt.InvalidTokenError("not an access token")
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[ALGORITHM],  # pinned: "none", RS*/ES* and other HS variants are refused
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                options={"require": REQUIRED_CLAIMS, "verify_iat": True, "verify_nbf": True},
                leeway=self.settings.jwt_leeway_s,
            )
            parsed = AccessClaims(
                user_id=_text(claims["sub"]),
                tenant_id=_text(claims["tid"]),
                role=_text(claims["role"]),
                session_id=_text(claims["sid"]),
                token_id=_text(claims["jti"]),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("The access token has expired.") from exc
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            raise Unauthorized("The access token is invalid.") from exc
        return parsed


def _text(value: object) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise ValueError("a claim must be a short non-empty string")
    return value

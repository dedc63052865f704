"""Audit events: who did what, when, from where — written in the same transaction as the change they record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from vigil.core.clientinfo import ClientInfo
from vigil.core.database import utcnow
from vigil.core.ids import new_id
from vigil.identity.models import AuditEvent
from vigil.identity.principal import Principal
from vigil.identity.repository import AuditRepository


def record(
    session: Session,
    *,
    action: str,
    tenant_id: str | None,
    client: ClientInfo | None,
    principal: Principal | None = None,
    actor_id: str | None = None,
    actor: str | None = None,
    outcome: str = "success",
    target_type: str | None = None,
    target_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Adds an event to the session's transaction; it is kept exactly when the change it describes is."""
    if principal is not None:
        actor_id = actor_id or principal.user_id
        actor = actor or principal.email
    AuditRepository(session=session).record(
        AuditEvent(
            id=new_id("aud"),
            tenant_id=tenant_id,
            actor_id=actor_id,
            actor=actor[:320] if actor else None,
            action=action,
            outcome=outcome,
            target_type=target_type,
            target_id=target_id,
            ip=client.ip if client else None,
            user_agent=client.user_agent if client else None,
            details=details or {},
            created_at=utcnow(),
        )
    )

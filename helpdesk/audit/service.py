"""Recording actions in the audit trail."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from helpdesk.audit.models import AuditEntry


def record(
    session: Session,
    action: str,
    entity_type: str,
    entity_id: int | None,
    *,
    actor_type: str = "system",
    actor_id: int | None = None,
    **details: Any,
) -> AuditEntry:
    """Add an audit entry to the session (committed with the change it describes)."""
    entry = AuditEntry(
        actor_type=actor_type,
        actor_id=actor_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        details=details,
    )
    session.add(entry)
    return entry

"""The audit trail: who did what to which record."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field


class AuditEntry(SQLModel, table=True):
    """One recorded action."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    actor_type: str = Field(max_length=16)  # agent, system, customer, integration
    actor_id: int | None = None
    action: str = Field(max_length=64, index=True)
    entity_type: str = Field(max_length=32)
    entity_id: int | None = Field(default=None, index=True)
    details: dict[str, Any] = json_field()
    created_at: datetime = created_at_field(index=True)

"""The saved segments: a name and a definition (a list of conditions, all of which must hold)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field


class Segment(SQLModel, table=True):
    """A named group of customers, as a list of conditions (see ``helpdesk/segments/schemas.py``) that
    is matched anew each time: the members change as customers buy, complain and answer."""

    __tablename__ = "segment"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True)
    description: str | None = Field(default=None, max_length=2000)
    #: the conditions as the API took them: [{"kind": "bought", "product": "RC-18", ...}, ...]
    definition: list[dict[str, Any]] = json_field(default_factory=list)
    created_by: int | None = Field(default=None, foreign_key="agents.id")
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()

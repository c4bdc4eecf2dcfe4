"""Canned responses: saved replies agents insert by typing "/" and a shortcut."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field


class CannedResponse(SQLModel, table=True):
    """A saved reply, optionally for one team and one language."""

    __tablename__ = "canned_responses"

    id: int | None = Field(default=None, primary_key=True)
    shortcut: str = Field(max_length=64, unique=True, index=True)
    title: str = Field(max_length=200)
    text: str = Field(sa_type=Text)
    locale: str = Field(default="vi", max_length=8)
    team: str | None = Field(default=None, max_length=100)
    created_by: int | None = Field(default=None, foreign_key="agents.id")
    created_at: datetime = created_at_field()

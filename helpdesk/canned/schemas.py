"""API shapes for canned responses."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CannedResponseCreate(BaseModel):
    """A new saved reply."""

    shortcut: str = Field(min_length=1, max_length=64, pattern=r"^[\w\-]+$")
    title: str = Field(min_length=1, max_length=200)
    text: str = Field(min_length=1, max_length=4096)
    locale: str = Field(default="vi", pattern=r"^(vi|en)$")
    team: str | None = Field(default=None, max_length=100)


class CannedResponsePublic(CannedResponseCreate):
    """A saved reply as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int


class CannedResponsesPublic(BaseModel):
    """Saved replies matching a search."""

    data: list[CannedResponsePublic]
    count: int

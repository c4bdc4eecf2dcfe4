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


class CannedResponseUpdate(BaseModel):
    """What may change on a saved reply (fields left out stay as they are)."""

    shortcut: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[\w\-]+$")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    text: str | None = Field(default=None, min_length=1, max_length=4096)
    locale: str | None = Field(default=None, pattern=r"^(vi|en)$")
    team: str | None = Field(default=None, max_length=100)


class CannedExpandRequest(BaseModel):
    """The conversation a saved reply is being inserted into."""

    conversation_id: int = Field(ge=1)


class CannedExpanded(BaseModel):
    """A saved reply's text with the conversation's values filled in; ``missing`` lists the
    placeholders left in the text because the conversation has no value for them."""

    text: str
    missing: list[str]


class PlaceholderPublic(BaseModel):
    """A placeholder a saved reply may use."""

    name: str
    description: str


class CannedResponsePublic(CannedResponseCreate):
    """A saved reply as the API shows it."""

    model_config = ConfigDict(from_attributes=True)

    id: int


class CannedResponsesPublic(BaseModel):
    """Saved replies matching a search."""

    data: list[CannedResponsePublic]
    count: int

"""What the search API returns."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SnippetPart(BaseModel):
    """A piece of a snippet; ``match`` pieces are what the query found (render as text, not markup)."""

    text: str
    match: bool


class ConversationHit(BaseModel):
    """A conversation the query found, with where it matched."""

    id: int
    conversation_id: int
    customer_id: int
    customer_name: str
    channel: str
    status: str
    #: what matched: "message" (its text), "customer" (name, phone, channel id) or "order" (a code)
    matched: str
    message_id: int | None = None
    #: the matched text with the matches in <mark>, HTML-escaped (safe to insert as markup)
    snippet: str
    snippet_parts: list[SnippetPart]
    last_activity_at: datetime | None
    relevance: int


class CustomerHit(BaseModel):
    """A customer the query found by name, phone, channel id or one of their order codes."""

    id: int
    name: str
    phone: str | None
    channels: list[str]
    matched: str
    snippet: str
    snippet_parts: list[SnippetPart]
    #: their most recent conversation the agent may see (None: none yet, shown to admins only)
    conversation_id: int | None
    last_activity_at: datetime | None


class SearchResults(BaseModel):
    """``GET /api/search``: conversations and customers, most relevant first, then most recent."""

    conversations: list[ConversationHit]
    customers: list[CustomerHit]

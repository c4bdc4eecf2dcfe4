"""API shapes of the web chat routes."""

from __future__ import annotations

from pydantic import BaseModel


class WebchatSessionPublic(BaseModel):
    """A new visitor: the id their conversation is filed under and the token that proves it."""

    visitor_id: str
    token: str

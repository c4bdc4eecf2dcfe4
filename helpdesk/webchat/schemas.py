"""API shapes of the web chat routes."""

from __future__ import annotations

from pydantic import BaseModel

from helpdesk.attachments.schemas import AttachmentPublic


class WebchatSessionPublic(BaseModel):
    """A new visitor: the id their conversation is filed under and the token that proves it."""

    visitor_id: str
    token: str


class WebchatUploadPublic(BaseModel):
    """A visitor's uploaded file, stored as a message of their chat."""

    #: the message's id as the widget knows it (the one it sent, or one minted for it)
    id: str
    text: str
    #: a resend of a message stored before (same id): nothing new was stored
    duplicate: bool
    #: the fixed shape, with signed links for the visitor
    attachments: list[AttachmentPublic]

"""Messages as agents see them, with their attachments: shared by every route that lists messages
(a conversation's thread, a customer's timeline)."""

from __future__ import annotations

from sqlmodel import Session

from helpdesk.attachments.service import agent_view, rows_of_messages
from helpdesk.conversations.models import Message
from helpdesk.conversations.schemas import MessagePublic


def public_messages(session: Session, messages: list[Message]) -> list[MessagePublic]:
    """Messages as agents see them, each with its attachments (links to the download routes); one
    query for all their attachments."""
    rows = rows_of_messages(session, [m.id for m in messages if m.attachments or m.direction == "out"])
    shown = []
    for message in messages:
        public = MessagePublic.model_validate(message)
        if message.id in rows:
            public.attachments = [agent_view(row) for row in rows[message.id]]
        shown.append(public)
    return shown

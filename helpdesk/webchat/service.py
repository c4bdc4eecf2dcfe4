"""Web chat visitors: signed identities and their history (no HTTP here; frames are stored by the
webhook edge's ``store_events``, like any webhook event)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import or_
from sqlmodel import Session, col, select

from connectors.base import (
    Button,
    OutboundButtons,
    OutboundQuickReplies,
    OutboundRatingRequest,
)
from connectors.webchat import ID_PATTERN, WebchatConnector, client_message_id
from helpdesk.attachments.models import Attachment
from helpdesk.attachments.schemas import AttachmentPublic
from helpdesk.attachments.service import rows_of_messages
from helpdesk.conversations.models import Conversation, DeliveryStatus, Message
from helpdesk.customers.models import ChannelIdentity
from helpdesk.outbox.models import OutboxItem
from helpdesk.outbox.service import OUTBOUND
from helpdesk.webchat.schemas import WebchatSessionPublic

HISTORY_LIMIT = 200


def _signature(secret_key: str, visitor_id: str) -> str:
    # The "webchat:" prefix keeps these MACs from being valid for any other use of the same key.
    return hmac.new(secret_key.encode(), f"webchat:{visitor_id}".encode(), hashlib.sha256).hexdigest()


def new_session(secret_key: str) -> WebchatSessionPublic:
    """A fresh visitor id and the token that lets only its holder read and write that visitor's chat."""
    visitor_id = secrets.token_urlsafe(18)  # 24 URL-safe characters, 144 random bits
    return WebchatSessionPublic(visitor_id=visitor_id, token=f"{visitor_id}.{_signature(secret_key, visitor_id)}")


def visitor_for_token(secret_key: str, token: str | None, previous_keys: Sequence[str] = ()) -> str | None:
    """The visitor a token was issued to, or None if it was not issued with this key (or one of the
    ``previous_keys`` of a secret rotation: a visitor keeps their chat across it)."""
    if not token or token.count(".") != 1:
        return None
    visitor_id, signature = token.split(".")
    if not ID_PATTERN.match(visitor_id):
        return None
    if not any(hmac.compare_digest(_signature(key, visitor_id).encode(), signature.encode())
               for key in (secret_key, *previous_keys)):
        return None
    return visitor_id


def _buttons_of(body: dict[str, Any] | None) -> tuple[Button, ...]:
    if not body:
        return ()
    try:
        outbound = OUTBOUND.validate_python(body)
    except ValueError:
        return ()
    match outbound:
        case OutboundButtons(buttons=buttons) | OutboundQuickReplies(options=buttons):
            return buttons
        case OutboundRatingRequest():
            return outbound.buttons()
    return ()


def history_item(message: Message, outbox_body: dict[str, Any] | None,
                 attachments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A stored message as the widget shows it; ``id`` is the one the live frame carried."""
    item: dict[str, Any] = {
        # Inbound: the widget's own client id (stored scoped to the visitor); outbound: the id the
        # connector minted when it published the frame. Either way the widget can tell a replayed
        # message from a new one.
        "id": client_message_id(message.channel_message_id) if message.channel_message_id else f"m{message.id}",
        "author": message.author,
        "text": message.text,
        "created_at": message.created_at.isoformat(),
    }
    buttons = _buttons_of(outbox_body)
    if buttons:
        item["buttons"] = [{"title": b.title, "payload": b.payload} for b in buttons]
    if attachments:
        item["attachments"] = attachments
    return item


def visitor_history(session: Session, visitor_id: str, limit: int = HISTORY_LIMIT, *,
                    files: Callable[[Attachment], AttachmentPublic] | None = None) -> list[dict[str, Any]]:
    """The visitor's latest non-private messages across all their conversations, oldest first.

    Outgoing messages still pending delivery are left out: they are on their way as live frames,
    and listing them here as well would show them twice under two ids.
    """
    identity_id = session.exec(
        select(ChannelIdentity.id).where(ChannelIdentity.channel == WebchatConnector.name,
                                         ChannelIdentity.external_id == visitor_id)
    ).first()
    if identity_id is None:
        return []
    rows = session.exec(
        select(Message, OutboxItem.body)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .outerjoin(OutboxItem, OutboxItem.message_id == Message.id)
        .where(Conversation.identity_id == identity_id, Message.is_private == False,  # noqa: E712
               or_(col(Message.delivery_status).is_(None), Message.delivery_status != DeliveryStatus.pending))
        .order_by(col(Message.id).desc())
        .limit(limit)
    ).all()
    # each file as the widget shows it, with fresh signed links (``files``)
    stored = rows_of_messages(session, [message.id for message, _ in rows]) if files is not None else {}
    items, seen = [], set()
    for message, body in reversed(rows):
        if message.id in seen:  # a message queued twice appears once
            continue
        seen.add(message.id)
        shown = [files(row).model_dump(mode="json") for row in stored.get(message.id, ())] if files else None
        items.append(history_item(message, body, shown))
    return items

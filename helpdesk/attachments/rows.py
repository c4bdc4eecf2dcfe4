"""An inbound message's attachments, written in plain statements inside the turn that stores the
message (``conversations.turns``): a row per attachment, pending until its bytes are fetched off the
acknowledgement path (``tasks``). A location or a contact is stored at once, with no file.

A web chat visitor's upload was stored before its turn (``service.AttachmentService.accept_upload``):
its row, made without a conversation, is linked to the message here instead.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import bindparam, insert, update
from sqlalchemy.engine import Connection

from connectors.base import Attachment as PlatformAttachment
from connectors.base import InboundMessage
from helpdesk.attachments.models import Attachment, AttachmentStatus
from helpdesk.core.types import MAX_ROW_ID, insert_values

_attachments = Attachment.__table__
_INSERT = insert(_attachments)
_LINK_UPLOAD = (
    update(_attachments)
    .where(_attachments.c.id == bindparam("attachment_id"), _attachments.c.channel == bindparam("upload_channel"),
           _attachments.c.conversation_id.is_(None))
    .values(conversation_id=bindparam("conversation_id"), message_id=bindparam("message_id"))
)
#: the metadata key under which the web chat upload route names the rows it stored (the route builds
#: that InboundMessage itself; no platform's payload reaches it)
UPLOADED = "uploaded_attachments"
#: the download starts as soon as the turn commits; the sweep takes it up only if it has not after this
FIRST_FETCH_LEASE = timedelta(seconds=60)
#: the only channel whose messages may link rows stored before their turn
UPLOAD_CHANNEL = "webchat"
#: the namespace of the rows' ids (made from the message's channel and id: see ``row_ids``)
_ROW_ID_NAMESPACE = uuid.UUID("6f1d9c2e-4b7a-5e38-9a51-0c2d7e4f8b13")


def _column_int(value: int | None) -> int | None:
    """A platform's announced number if an integer column holds it (PostgreSQL's INTEGER): a turn must
    not fail on an absurd size or dimension (it would cost the customer's message)."""
    return value if value is not None and 0 <= value <= MAX_ROW_ID else None


def _column_seconds(value: float | None) -> float | None:
    return value if value is not None and 0 <= value < 1e9 else None  # NaN and infinity fail both


def _column_text(value: str | None, length: int) -> str | None:
    return value[:length] if value else None


def has_attachment_rows(inbound: InboundMessage) -> bool:
    """Whether storing the message adds attachment rows (``record_inbound_attachments``): files the
    platform sent, or files the visitor uploaded before writing."""
    return bool(inbound.attachments) or (inbound.channel == UPLOAD_CHANNEL and bool(inbound.metadata.get(UPLOADED)))


def _uploaded(inbound: InboundMessage) -> list[str] | None:
    uploaded = inbound.metadata.get(UPLOADED) if inbound.channel == UPLOAD_CHANNEL else None
    return [str(item) for item in uploaded] if isinstance(uploaded, list) and uploaded else None


def row_ids(inbound: InboundMessage) -> list[str]:
    """The ids the message's attachment rows have (or will have once its turn stores it): a visitor's
    uploads keep theirs; a platform's files get ids made from the message's channel, its id and the
    file's place, so that the bot, which reads the message before its rows exist, links the same rows,
    and a turn tried again makes the same ids (a message is stored once per channel and id)."""
    return _uploaded(inbound) or [
        str(uuid.uuid5(_ROW_ID_NAMESPACE, f"{inbound.channel}\n{inbound.external_id}\n{position}"))
        for position in range(len(inbound.attachments))]


def with_row_ids(inbound: InboundMessage) -> tuple[PlatformAttachment, ...]:
    """The message's attachments as the bot reads them: each with the id of its stored copy."""
    ids = row_ids(inbound)
    return tuple(attachment.model_copy(update={"id": ids[position]}) if position < len(ids) else attachment
                 for position, attachment in enumerate(inbound.attachments))


def record_inbound_attachments(connection: Connection, inbound: InboundMessage, *, conversation_id: int,
                               message_id: int, channel: str, now: datetime) -> int:
    """Rows for the message's attachments; how many wait for a download."""
    uploaded = _uploaded(inbound) if channel == UPLOAD_CHANNEL else None
    if uploaded:
        for attachment_id in uploaded:
            connection.execute(_LINK_UPLOAD, {"attachment_id": str(attachment_id), "upload_channel": UPLOAD_CHANNEL,
                                              "conversation_id": conversation_id, "message_id": message_id})
        return 0
    rows, waiting = [], 0
    ids = row_ids(inbound)
    for position, attachment in enumerate(inbound.attachments):
        fetch = attachment.downloadable
        waiting += fetch
        error = None
        if not fetch and attachment.kind not in ("location", "contact"):
            error = f"the {channel} channel gave no address to download this {attachment.kind} from"
        rows.append(insert_values(
            Attachment, id=ids[position], conversation_id=conversation_id, message_id=message_id,
            channel=channel, kind=attachment.kind, position=position,
            mime_type=_column_text(attachment.mime_type, 127), size=_column_int(attachment.size),
            name=_column_text(attachment.name, 255), width=_column_int(attachment.width),
            height=_column_int(attachment.height),
            duration=_column_seconds(attachment.duration),
            status=(AttachmentStatus.pending if fetch else
                    AttachmentStatus.failed if error else AttachmentStatus.stored),
            error=error, source=attachment.model_dump(mode="json", exclude_none=True),
            next_attempt_at=now + FIRST_FETCH_LEASE if fetch else None, created_at=now,
            stored_at=None if fetch else now))
    if rows:
        connection.execute(_INSERT, rows)
    return waiting

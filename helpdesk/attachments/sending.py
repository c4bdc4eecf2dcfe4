"""Files that arrive by upload: an agent's, sent to the customer through the outbox, and a web chat
visitor's, which then goes through the same inbound pipeline as a socket message.

Every check comes before anything is stored or sent: the global cap (413), an empty file (422), a
damaged image (422), and for an agent's file the channel's own limits (``media_limits``: 415 for a
kind the channel cannot send, 413 over its size), each with the reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping

from anyio import to_thread
from sqlmodel import Session

from connectors.base import Attachment as PlatformAttachment
from connectors.base import InboundMessage
from helpdesk.agents.models import Agent, AgentRole
from helpdesk.attachments.media import Analysed, MediaRejected, analyse, safe_name
from helpdesk.attachments.models import Attachment, AttachmentStatus
from helpdesk.attachments.rows import UPLOAD_CHANNEL, UPLOADED
from helpdesk.attachments.service import AttachmentService
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import ConversationState, Message
from helpdesk.core.db import utcnow
from helpdesk.core.errors import CareDeskError, Conflict, Forbidden
from helpdesk.customers.models import ChannelIdentity
from helpdesk.outbox.models import OutboxItem

log = logging.getLogger(__name__)


class FileRefused(CareDeskError):
    """An uploaded file that cannot be taken or sent: 413 too large, 415 a kind the channel cannot
    send, 422 empty or damaged."""

    def __init__(self, reason: str, status: int):
        super().__init__(reason)
        self.status = status


def check_size(data: bytes, max_bytes: int) -> None:
    """Refuse an empty file and one over the global cap."""
    if not data:
        raise FileRefused("the file is empty (0 bytes)", 422)
    if len(data) > max_bytes:
        raise FileRefused(f"the file is {len(data)} bytes, over the limit of {max_bytes}", 413)


async def analyse_upload(data: bytes, max_bytes: int) -> Analysed:
    """What an uploaded file is (from its bytes), with its thumbnail; FileRefused if it cannot be kept."""
    check_size(data, max_bytes)
    try:
        return await to_thread.run_sync(analyse, data, None)
    except MediaRejected as exc:
        raise FileRefused(exc.reason, 422) from None


def sendable_kind(limits: Mapping[str, int], kind: str, size: int, channel: str) -> str:
    """The kind to send a file of ``kind`` as on a channel with these limits (an image the channel
    takes only as a document goes as a file); FileRefused when it cannot go at all."""
    candidates = [kind, "image"] if kind == "sticker" else [kind]
    candidates.append("file")
    send_kind = next((candidate for candidate in candidates if candidate in limits), None)
    if send_kind is None:
        raise FileRefused(f"the {channel} channel cannot send a file of this kind ({kind})", 415)
    if size > limits[send_kind]:
        raise FileRefused(f"the {channel} channel takes a {send_kind} of at most {limits[send_kind]} bytes; "
                          f"this one is {size}", 413)
    return send_kind


def _may_reply(session: Session, agent: Agent, conversation_id: int) -> str:
    """The conversation's channel, if the agent may reply in it (the checks of ``agent_reply``)."""
    conversation = conversations.get_conversation_for(session, agent, conversation_id)
    if conversation.state == ConversationState.resolved:
        raise Conflict("conversation is resolved; reopen it before replying")
    if conversation.assignee_id not in (None, agent.id) and agent.role == AgentRole.agent:
        raise Forbidden("conversation is assigned to another agent")
    return conversation.channel


async def send_agent_file(files: AttachmentService, *, conversation_id: int, agent: Agent, data: bytes,
                          name: str | None, text: str) -> tuple[Message, OutboxItem]:
    """Check, store and queue an agent's file (``text`` its caption) for the customer; the outbox
    sends it (``OutboundFile``). The caller commits nothing: this commits once all is in place."""

    def may_reply() -> str:
        with Session(files.engine) as session:
            return _may_reply(session, agent, conversation_id)

    channel = await to_thread.run_sync(may_reply)
    connector = files.connectors.get(channel)
    if connector is None:
        raise FileRefused(f"the {channel} channel is not configured on this server", 409)
    analysed = await analyse_upload(data, files.max_bytes)
    send_kind = sendable_kind(connector.media_limits, analysed.kind, analysed.size, channel)
    attachment_id, created_at = str(uuid.uuid4()), utcnow()
    file_name = safe_name(name, analysed.kind, analysed.mime_type)
    keys = await files.put_files(attachment_id, created_at, data, analysed)

    def record() -> tuple[Message, OutboxItem]:
        with Session(files.engine, expire_on_commit=False) as session:
            conversation = conversations.get_conversation_for(session, agent, conversation_id)
            recipient = session.get(ChannelIdentity, conversation.identity_id).external_id
            body = {"kind": "file", "recipient_id": recipient, "text": text, "attachment_id": attachment_id,
                    "file_kind": send_kind, "mime_type": analysed.mime_type, "name": file_name,
                    "size": analysed.size}
            message, item = conversations.agent_reply(session, conversation, agent, text, recipient, outbound=body)
            # described on the message too, as a platform's attachments are (list previews read it)
            message.attachments = [{"kind": analysed.kind, "name": file_name, "mime_type": analysed.mime_type,
                                    "size": analysed.size}]
            session.add(_stored_row(attachment_id, analysed, keys, file_name, channel=channel,
                                    conversation_id=conversation.id, message_id=message.id,
                                    source={"uploaded_by_agent": agent.id}, created_at=created_at))
            session.commit()
            return message, item

    try:
        return await to_thread.run_sync(record)
    except BaseException:
        await _forget_files(files, keys)
        raise


def _stored_row(attachment_id: str, analysed: Analysed, keys: tuple[str, str | None], name: str, *, channel: str,
                conversation_id: int | None, message_id: int | None, source: dict, created_at) -> Attachment:
    return Attachment(id=attachment_id, conversation_id=conversation_id, message_id=message_id, channel=channel,
                      kind=analysed.kind, mime_type=analysed.mime_type, size=analysed.size, name=name,
                      width=analysed.width, height=analysed.height, duration=analysed.duration,
                      storage_key=keys[0], thumbnail_key=keys[1],
                      status=AttachmentStatus.stored, sha256=analysed.sha256, source=source,
                      created_at=created_at, stored_at=created_at)


async def _forget_files(files: AttachmentService, keys: tuple[str, str | None]) -> None:
    for key in keys:
        if key is not None:
            try:
                await files.storage.delete(key)
            except Exception as exc:  # an orphan file costs disk only; the request's own error matters
                log.warning("could not delete the stored file %s of a refused upload: %s", key, exc)


async def accept_visitor_upload(files: AttachmentService, *, visitor_id: str, external_id: str, data: bytes,
                                name: str | None, text: str) -> tuple[InboundMessage, Attachment]:
    """Check and store a web chat visitor's file; the message to store through the inbound edge.

    The file's row has no conversation yet: the visitor's turn links it to their message
    (``rows.record_inbound_attachments``), so the file goes through the same pipeline as any message."""
    analysed = await analyse_upload(data, files.max_bytes)
    attachment_id, created_at = str(uuid.uuid4()), utcnow()
    file_name = safe_name(name, analysed.kind, analysed.mime_type)
    keys = await files.put_files(attachment_id, created_at, data, analysed)
    row = _stored_row(attachment_id, analysed, keys, file_name, channel=UPLOAD_CHANNEL, conversation_id=None,
                      message_id=None, source={"uploaded_by_visitor": visitor_id}, created_at=created_at)

    def record() -> None:
        with Session(files.engine, expire_on_commit=False) as session:
            session.add(row)
            session.commit()

    try:
        await to_thread.run_sync(record)
    except BaseException:
        await _forget_files(files, keys)
        raise
    # no url or file id: nothing to download, the bytes are already here (the bot sees a file came)
    described = PlatformAttachment(kind=analysed.kind, name=file_name, mime_type=analysed.mime_type,
                                   size=analysed.size, width=analysed.width, height=analysed.height,
                                   duration=analysed.duration)
    inbound = InboundMessage(channel=UPLOAD_CHANNEL, sender_id=visitor_id, external_id=external_id, text=text,
                             attachments=(described,), metadata={UPLOADED: [attachment_id]})
    return inbound, row

"""Downloading attachments: agents through their session (``/api/attachments/{id}``), web chat
visitors through a signed, short-lived link (``/webchat/attachments/{id}?expires=…&signature=…``).

A stored file is never something a browser runs: it is served as a download (``Content-Disposition:
attachment``), inline only when it is a raster image, audio or video (types decided from the bytes
when it was stored), never as HTML, SVG or script; with ``X-Content-Type-Options: nosniff`` and a
sandboxing Content-Security-Policy, so that even a file opened directly has no origin to act in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal
from urllib.parse import quote

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlmodel import Session, col, func, select

from helpdesk.agents.deps import CurrentAgent
from helpdesk.agents.models import Agent
from helpdesk.agents.teams import may_see
from helpdesk.attachments import links
from helpdesk.attachments.deps import AttachmentsDep
from helpdesk.attachments.media import RASTER_IMAGES, THUMBNAIL_MIME
from helpdesk.attachments.models import Attachment, AttachmentStatus
from helpdesk.attachments.schemas import AttachmentsPublic, ListedAttachment
from helpdesk.attachments.service import AttachmentService, agent_view
from helpdesk.attachments.storage import StoredFileMissing
from helpdesk.conversations.models import Conversation, Message
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import Forbidden, NotFound
from helpdesk.customers.service import visible_customer

router = APIRouter(tags=["attachments"])

#: a stored file's own answer, whoever asks: nothing in it may run, frame, or be re-typed
FILE_POLICY = "sandbox; default-src 'none'"
Variant = Literal["file", "thumbnail"]


def inline_type(mime_type: str | None) -> bool:
    """Whether a file of this (sniffed) type may be shown in the browser rather than downloaded."""
    mime_type = mime_type or ""
    return mime_type in RASTER_IMAGES or mime_type.startswith(("audio/", "video/"))


def content_disposition(disposition: str, name: str) -> str:
    """The header value naming the file, ASCII fallback and UTF-8 name (RFC 6266 / 5987)."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in name) or "file"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


async def _first_and_rest(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The stream with its first chunk already read (so a missing file is known before answering)."""
    first = await anext(stream, b"")

    async def chunks() -> AsyncIterator[bytes]:
        if first:
            yield first
        async for chunk in stream:
            yield chunk

    return chunks()


def byte_range(header: str | None, size: int | None) -> tuple[int, int] | None:
    """The one range ``Range: bytes=…`` asks for, as (start, length) within ``size``; None for the
    whole file (no header, several ranges, or no known size); RangeNotSatisfiable past the end."""
    if not header or size is None or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[len("bytes="):].strip().partition("-")
    if not (first.isdigit() or last.isdigit()) or (first and not first.isdigit()) or (last and not last.isdigit()):
        return None
    if not first:  # the last N bytes
        start = max(0, size - int(last))
        end = size - 1
    else:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise RangeNotSatisfiable(size)
    return start, end - start + 1


class RangeNotSatisfiable(Exception):
    """A Range header entirely past the end of the file."""

    def __init__(self, size: int):
        super().__init__(size)
        self.size = size


async def serve(files: AttachmentService, row: Attachment, variant: Variant, *, cross_origin: bool,
                range_header: str | None = None) -> Response:
    """The stored file (or its thumbnail) as a safe download; one byte range of it when asked (video
    and audio players seek that way, and Safari plays no video without it)."""
    if row.status != AttachmentStatus.stored or not row.storage_key:
        reason = row.error if row.status == AttachmentStatus.failed else None
        what = "has no file" if row.status == AttachmentStatus.stored else f"is {row.status}"
        raise NotFound(f"attachment {row.id} {what}" + (f": {reason}" if reason else ""))
    if variant == "thumbnail":
        if not row.thumbnail_key:
            raise NotFound(f"attachment {row.id} has no thumbnail")
        key, media_type, disposition = row.thumbnail_key, THUMBNAIL_MIME, "inline"
        name, size = f"{(row.name or 'file').rsplit('.', 1)[0]}.thumb.jpg", None
    else:
        shown = inline_type(row.mime_type)
        key, disposition = row.storage_key, "inline" if shown else "attachment"
        media_type = row.mime_type if shown or row.mime_type == "application/pdf" else "application/octet-stream"
        name, size = row.name or "file", row.size
    headers = {"Content-Disposition": content_disposition(disposition, name), "X-Content-Type-Options": "nosniff",
               "Content-Security-Policy": FILE_POLICY, "Cache-Control": "private, max-age=300",
               "Cross-Origin-Resource-Policy": "cross-origin" if cross_origin else "same-origin",
               "Referrer-Policy": "no-referrer", "Accept-Ranges": "bytes" if size else "none"}
    try:
        wanted = byte_range(range_header, size)
    except RangeNotSatisfiable as exc:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{exc.size}"})
    start, length = wanted if wanted is not None else (0, None)
    try:
        body = await _first_and_rest(files.storage.open_stream(key, start=start, length=length))
    except StoredFileMissing:
        raise NotFound(f"attachment {row.id}'s file is no longer stored") from None
    if wanted is not None:
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        headers["Content-Length"] = str(length)
        return StreamingResponse(body, status_code=206, media_type=media_type, headers=headers)
    if size:
        headers["Content-Length"] = str(size)
    return StreamingResponse(body, media_type=media_type, headers=headers)


def _visible(files: AttachmentService, agent: Agent, attachment_id: str) -> Attachment:
    """The attachment if the agent may see its conversation: NotFound for an unknown one (or one not
    in any conversation yet), Forbidden for one of a conversation the agent may not see."""
    with Session(files.engine, expire_on_commit=False) as session:
        row = session.get(Attachment, attachment_id)
        conversation = session.get(Conversation, row.conversation_id) if row and row.conversation_id else None
        if row is None or conversation is None:
            raise NotFound(f"attachment {attachment_id} not found")
        if not may_see(session, agent, conversation):
            raise Forbidden("this attachment belongs to a conversation you may not see")
        return row


@router.get("/api/attachments/{attachment_id}", response_class=StreamingResponse,
            summary="Download an attachment",
            responses={200: {"description": "The file", "content": {"application/octet-stream": {}}},
                       206: {"description": "The byte range asked for"},
                       416: {"description": "The range asked for is past the end of the file"},
                       403: {"description": "The conversation is not visible to this agent"},
                       404: {"description": "No such attachment, or it has no file (yet)"}})
async def download(attachment_id: str, request: Request, agent: CurrentAgent,
                   files: AttachmentsDep) -> Response:
    """The file (or the byte range asked), for an agent who may see its conversation."""
    row = await to_thread.run_sync(_visible, files, agent, attachment_id)
    return await serve(files, row, "file", cross_origin=False, range_header=request.headers.get("range"))


@router.get("/api/attachments/{attachment_id}/thumbnail", response_class=StreamingResponse,
            summary="An attachment's thumbnail",
            responses={200: {"description": "A JPEG", "content": {"image/jpeg": {}}},
                       403: {"description": "The conversation is not visible to this agent"},
                       404: {"description": "No such attachment, or it has no thumbnail"}})
async def thumbnail(attachment_id: str, agent: CurrentAgent, files: AttachmentsDep) -> StreamingResponse:
    """The file's thumbnail (a re-encoded JPEG without metadata), for an agent who may see it."""
    row = await to_thread.run_sync(_visible, files, agent, attachment_id)
    return await serve(files, row, "thumbnail", cross_origin=False)


async def _signed(files: AttachmentService, attachment_id: str, variant: Variant, expires: str | None,
                  signature: str | None, range_header: str | None = None) -> Response:
    problem = links.link_problem(files.secret_keys(), attachment_id, variant, expires, signature)
    if problem is not None:
        raise Forbidden(problem)
    row = await to_thread.run_sync(files.get, attachment_id)
    if row is None:
        raise NotFound(f"attachment {attachment_id} not found")
    return await serve(files, row, variant, cross_origin=True, range_header=range_header)


@router.get("/webchat/attachments/{attachment_id}", response_class=StreamingResponse,
            summary="A file by signed link (web chat visitors, platforms)",
            responses={206: {"description": "The byte range asked for"},
                       403: {"description": "The link is not signed, altered or expired"},
                       404: {"description": "No such attachment"},
                       416: {"description": "The range asked for is past the end of the file"}})
async def visitor_download(attachment_id: str, request: Request, files: AttachmentsDep,
                           expires: str | None = None, signature: str | None = None) -> Response:
    """The file (or the byte range asked) a signed link names, while the link is valid."""
    return await _signed(files, attachment_id, "file", expires, signature, request.headers.get("range"))


@router.get("/webchat/attachments/{attachment_id}/thumbnail", response_class=StreamingResponse,
            summary="A thumbnail by signed link",
            responses={403: {"description": "The link is not signed, altered or expired"},
                       404: {"description": "No such attachment or thumbnail"}})
async def visitor_thumbnail(attachment_id: str, files: AttachmentsDep, expires: str | None = None,
                            signature: str | None = None) -> StreamingResponse:
    """The thumbnail a signed link names, while the link is valid."""
    return await _signed(files, attachment_id, "thumbnail", expires, signature)


@router.get("/api/customers/{customer_id}/attachments", response_model=AttachmentsPublic,
            summary="A customer's files")
def customer_attachments(customer_id: int, agent: CurrentAgent, session: SessionDep,
                         limit: int = Query(100, ge=1, le=500), offset: int = Query(0, ge=0)) -> AttachmentsPublic:
    """The files (and shared locations and contacts) of the customer's conversations the agent may
    see, newest first, for the customer panel."""
    customer = visible_customer(session, agent, customer_id)
    visible = [c.id for c in session.exec(select(Conversation).where(Conversation.customer_id == customer.id))
               if may_see(session, agent, c)]
    if not visible:
        return AttachmentsPublic(data=[], count=0)
    query = (select(Attachment, Message.author).join(Message, Message.id == Attachment.message_id)
             .where(col(Attachment.conversation_id).in_(visible)))
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Attachment.created_at).desc(), col(Attachment.position))
                        .offset(offset).limit(limit)).all()
    return AttachmentsPublic(count=count, data=[
        ListedAttachment(**agent_view(row).model_dump(), conversation_id=row.conversation_id,
                         message_id=row.message_id, author=author, created_at=row.created_at)
        for row, author in rows])

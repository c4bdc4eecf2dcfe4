"""Attachments' background work: downloading a customer's files after their message is stored, the
sweep that takes up downloads no job did (or that are due again), and retention.

A customer's message with files is announced (``message_created`` with ``downloads``) once its turn
committed; the listener here hands the download to the job queue, so the webhook's acknowledgement
and the bot's answer never wait for it. Downloads run in a few lanes (runner keys) of their own: a
burst of photos takes at most ``storage.download_lanes`` of the runner's slots, and the chats' turns
keep the rest.
"""

from __future__ import annotations

import logging
import weakref
import zlib
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import delete, or_, update
from sqlmodel import Session, col, select

from helpdesk.attachments.models import Attachment, AttachmentStatus
from helpdesk.attachments.service import AttachmentService
from helpdesk.conversations.models import Conversation, ConversationState, Message
from helpdesk.core.db import utcnow
from helpdesk.core.events import DomainEvent
from helpdesk.jobs.runner import JobQueue, JobRunner
from helpdesk.jobs.scheduler import Scheduler

log = logging.getLogger(__name__)

#: the job that downloads a message's pending files (``message_id``) or one file (``attachment_id``)
FETCH_ATTACHMENTS = "fetch_attachments"
#: downloads at once in a worker by default (each lane one at a time; ``storage.download_lanes``).
#: Decoding and re-encoding photos is CPU work: on 2 cores, 4 at once raised the text webhooks' ack
#: p99 1.76x during a burst of 200 photos, 1 at once 1.49x, and the burst was stored as fast (15-16 s;
#: bench/attachments_bench.py)
LANES = 1
SWEEP = "attachment sweep"
SWEEP_INTERVAL_S = 10.0
RETENTION = "attachment retention"
RETENTION_INTERVAL_S = 3600.0
#: a visitor's upload whose turn never linked it to a message is deleted after this long
ORPHAN_AGE = timedelta(days=1)
#: most rows a sweep or retention pass takes at once
PAGE = 200

_REGISTERED: weakref.WeakSet = weakref.WeakSet()


def lane(name: str, lanes: int = LANES) -> str:
    """The runner key of a download: one of ``lanes``, the same for the same message or file."""
    return f"attachments:{zlib.crc32(name.encode()) % lanes}"


def fetch_soon(jobs: JobQueue, *, message_id: int | None = None, attachment_id: str | None = None) -> None:
    """Download a message's pending files (or one file) in the background (callable from any thread)."""
    args = {"message_id": message_id} if message_id is not None else {"attachment_id": attachment_id}
    jobs.dispatch(FETCH_ATTACHMENTS, **args)


def register_attachment_jobs(files: AttachmentService, runner: JobRunner) -> None:
    """Have ``runner`` run the download job, in as many lanes as the settings say."""
    lanes = files.settings.storage.download_lanes

    def handle(args: dict) -> None:
        if args.get("message_id") is not None:
            message_id = int(args["message_id"])
            runner.submit(lane(f"m{message_id}", lanes), lambda: files.fetch_message(message_id))
        else:
            attachment_id = str(args["attachment_id"])
            runner.submit(lane(attachment_id, lanes), lambda: files.fetch(attachment_id))

    runner.register(FETCH_ATTACHMENTS, handle)


def register_attachment_listeners(files: AttachmentService) -> None:
    """Start the download of a customer's files when their message is announced; idempotent."""
    if files.events in _REGISTERED:
        return
    _REGISTERED.add(files.events)

    async def download_when_stored(event: DomainEvent) -> None:
        message_id = event.data.get("message_id")
        if not event.data.get("downloads") or message_id is None:
            return
        if files.jobs is None:  # no job queue (a script): the sweep takes it up
            return
        fetch_soon(files.jobs, message_id=int(message_id))

    files.events.on("message_created")(download_when_stored)


def due_downloads(files: AttachmentService, limit: int = PAGE) -> list[str]:
    """Pending files whose download is due: never started (its job was lost) or due again (blocking)."""
    with Session(files.engine) as session:
        return list(session.exec(
            select(Attachment.id).where(Attachment.status == AttachmentStatus.pending,
                                        col(Attachment.next_attempt_at) <= utcnow())
            .order_by(col(Attachment.next_attempt_at)).limit(limit)).all())


async def sweep_downloads(files: AttachmentService) -> int:
    """Start the downloads that are due; how many."""
    due = await to_thread.run_sync(due_downloads, files)
    if files.jobs is not None:
        for attachment_id in due:
            fetch_soon(files.jobs, attachment_id=attachment_id)
    return len(due)


def expired_rows(files: AttachmentService, limit: int = PAGE) -> list[Attachment]:
    """Attachments past retention: of conversations resolved more than ``retention_days`` ago, and
    visitors' uploads that never reached a message (blocking)."""
    now = utcnow()
    conditions = [(col(Attachment.conversation_id).is_(None)) & (col(Attachment.created_at) < now - ORPHAN_AGE)]
    days = files.settings.storage.retention_days
    if days > 0:
        old = select(Conversation.id).where(Conversation.state == ConversationState.resolved,
                                            col(Conversation.resolved_at) < now - timedelta(days=days))
        conditions.append(col(Attachment.conversation_id).in_(old))
    with Session(files.engine, expire_on_commit=False) as session:
        return list(session.exec(select(Attachment).where(or_(*conditions)).limit(limit)).all())


async def delete_attachments(files: AttachmentService, rows: list[Attachment]) -> int:
    """Delete the files, then the rows, of these attachments; their messages keep their text and no
    longer show the platform's description of the file either."""
    for row in rows:
        for key in (row.storage_key, row.thumbnail_key):
            if key:
                await files.storage.delete(key)

    def forget() -> None:
        ids = [row.id for row in rows]
        message_ids = sorted({row.message_id for row in rows if row.message_id is not None})
        with Session(files.engine) as session:
            session.exec(delete(Attachment).where(col(Attachment.id).in_(ids)))
            if message_ids:
                session.exec(update(Message).where(col(Message.id).in_(message_ids)).values(attachments=[]))
            session.commit()

    await to_thread.run_sync(forget)
    return len(rows)


async def delete_conversation_attachments(files: AttachmentService, conversation_id: int) -> int:
    """Delete every attachment of a conversation (files and rows): for erasing a conversation's data."""

    def load() -> list[Attachment]:
        with Session(files.engine, expire_on_commit=False) as session:
            query = select(Attachment).where(Attachment.conversation_id == conversation_id)
            return list(session.exec(query).all())

    return await delete_attachments(files, await to_thread.run_sync(load))


async def apply_retention(files: AttachmentService) -> int:
    """Delete what is past retention, a page at a time; how many attachments went."""
    deleted = 0
    while rows := await to_thread.run_sync(expired_rows, files):
        deleted += await delete_attachments(files, rows)
        if len(rows) < PAGE:
            break
    if deleted:
        log.info("deleted %d attachments past retention", deleted)
    return deleted


def schedule_attachment_work(scheduler: Scheduler, files: AttachmentService) -> None:
    """The download sweep every SWEEP_INTERVAL_S and retention every RETENTION_INTERVAL_S (each in
    one worker replica per interval)."""
    scheduler.add(SWEEP, lambda: sweep_downloads(files), every_s=SWEEP_INTERVAL_S, shared=True)
    scheduler.add(RETENTION, lambda: apply_retention(files), every_s=RETENTION_INTERVAL_S, shared=True)

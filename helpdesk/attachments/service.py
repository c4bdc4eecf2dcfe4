"""Attachments' domain logic: fetching an inbound file and keeping it, the files' public shapes, and
the bytes the outbox sends.

A customer's file is fetched after their message's turn committed, by a background job
(``tasks``), never on the webhook's acknowledgement path. What the bytes are is decided from the
bytes (``media``); the file and its thumbnail go to storage (``storage``), then the row says
``stored``. A file that cannot be had — the platform's link is gone, it is over the limit, empty or
damaged — makes the row ``failed`` with the reason (the thread shows a placeholder), and the message
itself is kept. A passing fault (a timeout, a 5xx) is tried again later, a few times.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from connectors.base import Attachment as PlatformAttachment
from connectors.base import ChannelConnector, DeliveryError, MediaError, MediaFile
from helpdesk.attachments import links
from helpdesk.attachments.media import Analysed, MediaRejected, analyse, safe_name
from helpdesk.attachments.models import Attachment, AttachmentStatus
from helpdesk.attachments.schemas import AttachmentPublic
from helpdesk.attachments.storage import Storage, StoredFileMissing
from helpdesk.core.aio import run_in_background
from helpdesk.core.config import Settings
from helpdesk.core.db import utcnow
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.core.events import EventBus

log = logging.getLogger(__name__)

#: a download under way is not taken up by the sweep before this long (its worker may have died)
FETCH_LEASE = timedelta(seconds=120)
#: the first retry of a failed download waits this long, doubling up to RETRY_MAX
RETRY_BASE = timedelta(seconds=5)
RETRY_MAX = timedelta(minutes=10)
#: the largest platform preview fetched for a video's poster
POSTER_MAX_BYTES = 2 * 1024 * 1024
_attachments = Attachment.__table__


def storage_keys(attachment_id: str, created_at: datetime) -> tuple[str, str]:
    """Where an attachment's file and thumbnail are stored (by month, so a listing stays small)."""
    folder = f"{created_at:%Y/%m}"
    return f"{folder}/{attachment_id}", f"{folder}/{attachment_id}.thumb.jpg"


@dataclass(eq=False)
class AttachmentService:
    """What keeping files needs: the database, the storage, the channels (to download from), the bus
    (to tell the inbox a file is in) and the settings (limits, links). ``jobs`` is the process's job
    queue once it runs."""

    engine: Engine
    storage: Storage
    connectors: Mapping[str, ChannelConnector]
    events: EventBus
    settings: Settings
    jobs: Any = field(default=None)

    @property
    def max_bytes(self) -> int:
        """The global cap on a file's size."""
        return self.settings.storage.max_bytes

    @property
    def _secret(self) -> str:
        return self.settings.secret_key.get_secret_value()

    def secret_keys(self) -> list[str]:
        """The secret key and those of a rotation under way (for checking signed links)."""
        return [self._secret, *(key.get_secret_value() for key in self.settings.secret_key_previous)]

    # -- fetching a customer's file ------------------------------------------------------------

    def _claim(self, attachment_id: str) -> Attachment | None:
        """The pending row, its lease renewed so the sweep leaves it alone while it downloads."""
        with Session(self.engine, expire_on_commit=False) as session:
            row = session.get(Attachment, attachment_id)
            if row is None or row.status != AttachmentStatus.pending:
                return None
            row.next_attempt_at = utcnow() + FETCH_LEASE
            session.commit()
            return row

    def pending_of_message(self, message_id: int) -> list[str]:
        """The ids of a message's attachments still waiting for their bytes (blocking)."""
        with Session(self.engine) as session:
            return list(session.exec(select(Attachment.id).where(
                Attachment.message_id == message_id, Attachment.status == AttachmentStatus.pending)
                .order_by(col(Attachment.position))).all())

    async def fetch_message(self, message_id: int) -> None:
        """Fetch every pending attachment of a message, one after the other."""
        for attachment_id in await to_thread.run_sync(self.pending_of_message, message_id):
            await self.fetch(attachment_id)

    async def fetch(self, attachment_id: str) -> None:
        """Download, check and keep one pending attachment; record why when it cannot be had.

        An infrastructure fault (database, storage away) propagates, and the job runner tries
        again; the platform's passing faults are counted on the row and retried by the sweep."""
        row = await to_thread.run_sync(self._claim, attachment_id)
        if row is None:
            return
        connector = self.connectors.get(row.channel)
        if connector is None:
            await self._settle(row, error=f"the {row.channel} channel is not configured on this server")
            return
        platform = PlatformAttachment.model_validate(row.source)
        try:
            media = await connector.fetch_media(platform, max_bytes=self.max_bytes)
        except MediaError as exc:
            await (self._retry_later(row, exc.reason) if exc.retryable else self._settle(row, error=exc.reason))
            return
        except Exception as exc:  # a connector's fault it did not classify: a passing one, counted
            if not is_infrastructure_error(exc):
                log.warning("downloading attachment %s failed: %r", row.id, exc)
            await self._retry_later(row, f"the download failed: {type(exc).__name__}")
            return
        if len(media.data) > self.max_bytes:
            await self._settle(row, error=f"the file is {len(media.data)} bytes, over the limit of {self.max_bytes}")
            return
        try:
            analysed = await run_in_background(analyse, media.data, platform.kind)
        except MediaRejected as exc:
            await self._settle(row, error=exc.reason)
            return
        if analysed.thumbnail is None and analysed.kind == "video":
            analysed = replace(analysed, thumbnail=await self._platform_poster(connector, platform))
        keys = await self.put_files(row.id, row.created_at, media.data, analysed)
        name = safe_name(platform.name or media.name, analysed.kind, analysed.mime_type)
        await self._settle(row, analysed=analysed, keys=keys, name=name)

    async def _platform_poster(self, connector: ChannelConnector, platform: PlatformAttachment) -> bytes | None:
        """A video's poster from the platform's own preview (Telegram, Zalo give one), re-encoded like
        any thumbnail; None when there is none or it cannot be had (the video is kept all the same)."""
        if not (platform.thumbnail_url or platform.thumbnail_file_id):
            return None
        preview = PlatformAttachment(kind="image", url=platform.thumbnail_url, file_id=platform.thumbnail_file_id)
        try:
            media = await connector.fetch_media(preview, max_bytes=POSTER_MAX_BYTES)
            return (await run_in_background(analyse, media.data, "image")).thumbnail
        except (MediaError, MediaRejected) as exc:
            log.info("no poster for a video: %s", getattr(exc, "reason", exc))
            return None

    async def put_files(self, attachment_id: str, created_at: datetime, data: bytes,
                        analysed: Analysed) -> tuple[str, str | None]:
        """Store the file and its thumbnail; their keys."""
        file_key, thumbnail_key = storage_keys(attachment_id, created_at)
        await self.storage.put(file_key, data, analysed.mime_type)
        if analysed.thumbnail is None:
            return file_key, None
        await self.storage.put(thumbnail_key, analysed.thumbnail, "image/jpeg")
        return file_key, thumbnail_key

    async def _retry_later(self, row: Attachment, reason: str) -> None:
        attempts = row.attempts + 1
        if attempts >= self.settings.storage.fetch_attempts:
            await self._settle(row, error=f"{reason} (gave up after {attempts} tries)")
            return
        delay = min(RETRY_MAX, RETRY_BASE * 2 ** (attempts - 1))
        values = {"attempts": attempts, "next_attempt_at": utcnow() + delay, "error": reason[:500]}
        await to_thread.run_sync(self._update, row.id, values)

    def _update(self, attachment_id: str, values: dict[str, Any]) -> bool:
        with self.engine.begin() as connection:
            changed = connection.execute(update(_attachments).where(
                _attachments.c.id == attachment_id, _attachments.c.status == AttachmentStatus.pending,
            ).values(**values))
            return changed.rowcount > 0

    async def _settle(self, row: Attachment, *, error: str | None = None, analysed: Analysed | None = None,
                      keys: tuple[str, str | None] | None = None, name: str | None = None) -> None:
        """Record the outcome (stored or failed) and tell the inbox."""
        now = utcnow()
        if error is not None:
            values: dict[str, Any] = {"status": AttachmentStatus.failed, "error": error[:500],
                                      "next_attempt_at": None}
        else:
            values = {"status": AttachmentStatus.stored, "error": None, "next_attempt_at": None, "stored_at": now,
                      "kind": analysed.kind, "mime_type": analysed.mime_type, "size": analysed.size,
                      "sha256": analysed.sha256, "storage_key": keys[0], "thumbnail_key": keys[1], "name": name}
            # what the bytes say; a figure they do not give (a video ffmpeg cannot read) stays the platform's
            values.update({key: value for key in ("width", "height", "duration")
                           if (value := getattr(analysed, key)) is not None})
        if not await to_thread.run_sync(self._update, row.id, values):
            return  # another worker settled it first
        if error is not None:
            log.info("attachment %s of message %s failed: %s", row.id, row.message_id, error)
        await self.events.publish("attachment_updated", conversation_id=row.conversation_id,
                                  message_id=row.message_id, attachment_id=row.id, status=values["status"],
                                  error=values["error"])

    # -- public shapes ---------------------------------------------------------------------------

    def visitor_view(self, row: Attachment) -> AttachmentPublic:
        """An attachment as a web chat visitor sees it (signed, short-lived links)."""
        stored = row.status == AttachmentStatus.stored and row.storage_key is not None
        return public_view(row, self.visitor_link(row.id) if stored else None,
                            self.visitor_link(row.id, "thumbnail") if stored and row.thumbnail_key else None)

    def visitor_link(self, attachment_id: str, variant: str = "file") -> str:
        """A signed link for a visitor: absolute when the server's public address is configured,
        else a path the widget resolves against the server it talks to."""
        ttl = self.settings.storage.link_ttl_s
        base = self.settings.storage.public_base_url
        if base:
            return links.signed_url(base, self._secret, attachment_id, variant=variant, ttl_s=ttl)
        return links.signed_path(self._secret, attachment_id, variant=variant, ttl_s=ttl)

    # -- what the outbox sends ---------------------------------------------------------------------

    async def media_for(self, attachment_id: str, channel: str) -> MediaFile:
        """The bytes of a stored attachment to send on ``channel``, with a signed link the platform
        can fetch them from when the server has a public address (web chat: a link for the widget)."""
        row = await to_thread.run_sync(self.get, attachment_id)
        if row is None or row.status != AttachmentStatus.stored or not row.storage_key:
            raise DeliveryError("the file to send is no longer stored", retryable=False)
        try:
            data = await self.storage.get(row.storage_key)
        except StoredFileMissing:
            raise DeliveryError("the file to send is no longer stored", retryable=False) from None
        url = None
        if self.settings.storage.public_base_url or channel == "webchat":
            url = self.visitor_link(row.id)
        return MediaFile(data, row.mime_type, row.name, url)

    def get(self, attachment_id: str) -> Attachment | None:
        """One attachment row (blocking)."""
        with Session(self.engine, expire_on_commit=False) as session:
            return session.get(Attachment, attachment_id)


def public_view(row: Attachment, url: str | None, thumbnail_url: str | None) -> AttachmentPublic:
    """The row's public shape with the given links."""
    source = row.source or {}
    return AttachmentPublic(
        id=row.id, kind=row.kind, mime_type=row.mime_type, size=row.size, name=row.name, url=url,
        thumbnail_url=thumbnail_url, status=row.status, error=row.error, width=row.width, height=row.height,
        duration=row.duration, latitude=source.get("latitude"), longitude=source.get("longitude"),
        phone=source.get("phone"))


def agent_view(row: Attachment) -> AttachmentPublic:
    """An attachment as agents see it (links to the authenticated download routes)."""
    stored = row.status == AttachmentStatus.stored and row.storage_key is not None
    return public_view(row, f"/api/attachments/{row.id}" if stored else None,
                       f"/api/attachments/{row.id}/thumbnail" if stored and row.thumbnail_key else None)


def rows_of_messages(session: Session, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    """The attachment rows of the messages, by message id, in the order they came."""
    found: dict[int, list[Attachment]] = {}
    for start in range(0, len(message_ids), 500):
        batch = list(message_ids[start:start + 500])
        rows = session.exec(select(Attachment).where(col(Attachment.message_id).in_(batch))
                            .order_by(col(Attachment.message_id), col(Attachment.position))).all()
        for row in rows:
            found.setdefault(row.message_id, []).append(row)
    return found

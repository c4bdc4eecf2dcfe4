"""Campaigns' listener: a chat message the outbox failed to send for good (``message_delivery`` with
status failed) marks its recipient failed at once, with the platform's words, rather than at the next
look at the campaign."""

from __future__ import annotations

import weakref

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from helpdesk.campaigns.models import CampaignRecipient, RecipientStatus
from helpdesk.core.events import DomainEvent, EventBus

#: buses already wired, so registering twice (the app and a test) does not mark twice
_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()


def mark_failed_send(session: Session, message_id: int, error: str | None) -> int:
    """Mark failed the recipient whose chat message the platform refused for good; how many (0 or 1)."""
    result = session.exec(update(CampaignRecipient).where(
        CampaignRecipient.message_id == message_id, CampaignRecipient.status == RecipientStatus.sent,
    ).values(status=RecipientStatus.failed, reason=(error or "the platform refused the message")[:500])
        .execution_options(synchronize_session=False))
    return result.rowcount or 0


def register_campaign_listeners(events: EventBus, engine: Engine) -> None:
    """Have failed chat sends mark their campaign recipient; idempotent per bus."""
    if events in _REGISTERED:
        return
    _REGISTERED.add(events)

    async def recipient_failed(event: DomainEvent) -> None:
        message_id = event.data.get("message_id")
        if event.data.get("status") != "failed" or not isinstance(message_id, int):
            return

        def write() -> None:
            with Session(engine) as session:
                if mark_failed_send(session, message_id, event.data.get("error")):
                    session.commit()

        await to_thread.run_sync(write)

    events.on("message_delivery")(recipient_failed)

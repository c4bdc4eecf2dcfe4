"""Admin routes for the message pipeline: parked messages and sending them through again, and each
channel's status (on or off, last webhook, last error, the webhook URL to register)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlmodel import col, select

from connectors import CONNECTORS

from helpdesk.channels import parked
from helpdesk.channels.parked import ParkedEventsPublic
from helpdesk.channels.deps import ConnectorsDep
from helpdesk.channels.models import InboundEvent
from helpdesk.channels.tasks import process_event_soon
from helpdesk.agents.deps import CurrentAdmin
from helpdesk.core.deps import SessionDep, SettingsDep
from helpdesk.jobs.deps import JobsDep
from helpdesk.outbox.models import OutboxItem

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/parked-events", response_model=ParkedEventsPublic)
def list_parked_events(_admin: CurrentAdmin, session: SessionDep, limit: int = Query(100, ge=1, le=500),
                       offset: int = Query(0, ge=0)) -> ParkedEventsPublic:
    """Messages whose processing failed too often, newest first, with the error (admins)."""
    return parked.list_parked(session, limit=limit, offset=offset)


@router.post("/parked-events/{event_id}/retry", status_code=202)
def retry_parked_event(event_id: int, admin: CurrentAdmin, session: SessionDep, jobs: JobsDep) -> dict:
    """Process a parked message again (admins), e.g. once the cause of its failure is fixed."""
    channel, sender_id = parked.release_parked(session, event_id, actor_id=admin.id)
    session.commit()  # the worker must find the event waiting
    process_event_soon(jobs, event_id, channel, sender_id)
    return {"id": event_id, "status": "queued"}


class ChannelStatusPublic(BaseModel):
    """One channel as the admin page shows it: no secret, only whether it is on and how it fares."""

    name: str
    enabled: bool
    #: the address to register with the platform (None: the channel takes no webhook, or the public
    #: base URL is not set)
    webhook_url: str | None
    needs_webhook: bool
    last_webhook_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    #: the platform's answer to the start-up credentials check: "ok", "rejected", "unchecked" or None
    credentials: str | None


class ChannelsStatusPublic(BaseModel):
    """Every channel CareDesk knows, on or off, and the base URL webhook addresses are built from."""

    data: list[ChannelStatusPublic]
    public_base_url: str


#: channels whose messages do not come through a platform's webhook
NO_WEBHOOK = frozenset({"cli", "webchat"})


@router.get("/channels", response_model=ChannelsStatusPublic)
def list_channel_status(_admin: CurrentAdmin, session: SessionDep, connectors: ConnectorsDep,
                        settings: SettingsDep, request: Request) -> ChannelsStatusPublic:
    """Which channels are on, when each last received a webhook, its last sending error and the
    webhook URL to register, built from CAREDESK_STORAGE__PUBLIC_BASE_URL (admins)."""
    base = settings.storage.public_base_url.rstrip("/")
    checks = getattr(request.app.state.wiring, "credential_checks", {})
    rows = []
    for name in CONNECTORS:
        last_webhook = session.exec(select(InboundEvent.received_at).where(InboundEvent.channel == name)
                                    .order_by(col(InboundEvent.id).desc()).limit(1)).first()
        failure = session.exec(select(OutboxItem.last_error, OutboxItem.created_at)
                               .where(OutboxItem.channel == name, col(OutboxItem.last_error).is_not(None))
                               .order_by(col(OutboxItem.id).desc()).limit(1)).first()
        needs_webhook = name not in NO_WEBHOOK
        rows.append(ChannelStatusPublic(
            name=name, enabled=name in connectors, needs_webhook=needs_webhook,
            webhook_url=f"{base}/webhooks/{name.replace('_', '-')}" if needs_webhook and base else None,
            last_webhook_at=last_webhook, last_error=failure[0] if failure else None,
            last_error_at=failure[1] if failure else None, credentials=checks.get(name)))
    return ChannelsStatusPublic(data=rows, public_base_url=base)

"""Admins' campaign routes: create a draft for a list of customers, start, pause, resume or cancel it,
see where it stands, its recipients and the report of what followed. Thin: the domain is ``service.py``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from sqlmodel import Session

from helpdesk.agents.deps import CurrentAdmin
from helpdesk.campaigns import service
from helpdesk.campaigns.models import Campaign, RecipientStatus
from helpdesk.campaigns.schemas import (
    CampaignCounts,
    CampaignCreate,
    CampaignProblem,
    CampaignPublic,
    CampaignReport,
    CampaignsPublic,
    RecipientPublic,
    RecipientsPublic,
)
from helpdesk.campaigns.tasks import CampaignSender, send_campaigns_soon
from helpdesk.core.errors import BadRequest, NotFound
from helpdesk.segments.service import segment_customer_ids

router = APIRouter(prefix="/api/campaigns", tags=["campaigns"])
#: a refused campaign says why: a sentence from the domain, or FastAPI's list of fields that failed
REFUSED = {422: {"model": CampaignProblem, "description": "refused, with the reason"}}


def _sender(request: Request) -> CampaignSender:
    return request.app.state.wiring.campaigns


async def _in_transaction(request: Request, work: Callable[[Session, datetime], Any]) -> Any:
    """``work(session, now)`` in one committed transaction, in a worker thread."""
    sender = _sender(request)
    now = sender.clock.now()

    def run() -> Any:
        with Session(sender.engine, expire_on_commit=False) as session:
            result = work(session, now)
            session.commit()
            return result

    return await to_thread.run_sync(run)


def _public(session: Session, campaign: Campaign, counts: dict[str, int] | None = None,
            detail: bool = False) -> CampaignPublic:
    if detail:  # failed chat sends, replies and orders since the last look
        service.refresh_outcomes(session, campaign.id)
    by_status = counts if counts is not None else service.status_counts(session, [campaign.id])[campaign.id]
    total = sum(by_status.values())
    return CampaignPublic(
        id=campaign.id, name=campaign.name, message=campaign.message, zns_template=campaign.zns_template,
        status=campaign.status, audience=len(campaign.customer_ids), segment_id=campaign.segment_id, rate_per_minute=campaign.rate_per_minute,
        created_by=campaign.created_by, created_at=campaign.created_at, started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        counts=CampaignCounts(total=total, by_status={status: by_status.get(status, 0) for status in RecipientStatus},
                              by_reason=service.reason_counts(session, campaign.id) if detail else {},
                              by_channel=service.channel_counts(session, campaign.id) if detail else {}),
        report=CampaignReport(campaign_id=campaign.id, **service.campaign_report(session, campaign.id, refresh=False))
        if detail else None)


def segment_members(session: Session, segment_id: int, now: datetime) -> list[int]:
    """The members of a saved segment now, as a campaign's audience (422 when there is no such segment,
    or it matches nobody)."""
    try:
        members = segment_customer_ids(session, segment_id, now=now)
    except NotFound as exc:
        raise service.CampaignInvalid(f"unknown segment {segment_id}") from exc
    if not members:
        raise service.CampaignInvalid(f"segment {segment_id} matches no customer now: the audience would be empty")
    return members


@router.post("", response_model=CampaignPublic, status_code=201, responses=REFUSED)
async def create_campaign(body: CampaignCreate, admin: CurrentAdmin, request: Request) -> CampaignPublic:
    """A draft campaign of ``message`` to ``customer_ids`` (422 with the reason: an empty audience,
    unknown customers, a ZNS template the mapping does not have)."""
    templates = _sender(request).zns_templates()

    def create(session: Session, now: datetime) -> CampaignPublic:
        if body.segment_id is not None:
            customer_ids = segment_members(session, body.segment_id, now)
        else:
            customer_ids = body.customer_ids or []
        campaign = service.create_campaign(
            session, name=body.name, message=body.message, customer_ids=customer_ids,
            zns_template=body.zns_template, rate_per_minute=body.rate_per_minute, created_by=admin.id, now=now,
            zns_templates=templates, segment_id=body.segment_id)
        return _public(session, campaign, {})

    return await _in_transaction(request, create)


@router.get("", response_model=CampaignsPublic)
async def list_campaigns(
    admin: CurrentAdmin, request: Request,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CampaignsPublic:
    """Campaigns, newest first, each with its recipients by status."""
    def read(session: Session, now: datetime) -> CampaignsPublic:
        campaigns, total = service.list_campaigns(session, offset=offset, limit=limit)
        counts = service.status_counts(session, [campaign.id for campaign in campaigns])
        return CampaignsPublic(data=[_public(session, campaign, counts[campaign.id]) for campaign in campaigns],
                               count=total)

    return await _in_transaction(request, read)


@router.get("/{campaign_id}", response_model=CampaignPublic)
async def get_campaign(campaign_id: int, admin: CurrentAdmin, request: Request) -> CampaignPublic:
    """The campaign with its recipients by status, skipped and failed ones by reason, sent ones by channel."""
    def read(session: Session, now: datetime) -> CampaignPublic:
        return _public(session, service.get_campaign(session, campaign_id), detail=True)

    return await _in_transaction(request, read)


#: the steps an admin takes on a campaign: the service function that takes it, whether the sending task
#: should look at once (it does so every few seconds anyway), and what the step does
STEPS: dict[str, tuple[Callable[[Session, int, datetime], Campaign], bool, str]] = {
    "start": (service.start_campaign, True, "Start sending a draft (409 for any other state)."),
    "pause": (service.pause_campaign, False, "Hold the messages not yet sent (409 unless sending)."),
    "resume": (service.resume_campaign, True, "Send again, spread from now (409 unless paused)."),
    "cancel": (service.cancel_campaign, False,
               "Stop for good; the messages not yet sent are skipped (409 when done or cancelled already)."),
}


def _step_route(step: Callable[[Session, int, datetime], Campaign], send_soon: bool) -> Callable[..., Any]:
    """The route of one step: take it in one transaction, answer the campaign as it now stands."""

    async def take_step(campaign_id: int, admin: CurrentAdmin, request: Request) -> CampaignPublic:
        def run(session: Session, now: datetime) -> CampaignPublic:
            campaign = step(session, campaign_id, now)
            session.flush()
            return _public(session, campaign, detail=True)

        public = await _in_transaction(request, run)
        if send_soon:
            send_campaigns_soon(_sender(request))
        return public

    return take_step


def _add_step_routes() -> None:
    """``POST /api/campaigns/{id}/start`` (and pause, resume, cancel), one route a step."""
    for name, (step, send_soon, doc) in STEPS.items():
        route = _step_route(step, send_soon)
        route.__name__ = route.__qualname__ = f"{name}_campaign"  # the OpenAPI operation's id and summary
        route.__doc__ = doc
        router.add_api_route(f"/{{campaign_id}}/{name}", route, methods=["POST"], response_model=CampaignPublic,
                             responses=REFUSED)


_add_step_routes()


@router.get("/{campaign_id}/recipients", response_model=RecipientsPublic)
async def campaign_recipients(
    campaign_id: int, admin: CurrentAdmin, request: Request,
    status: Annotated[str | None, Query(max_length=12)] = None,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0, limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> RecipientsPublic:
    """One page of the recipients (optionally of one status), in audience order."""
    if status is not None and status not in set(RecipientStatus):
        raise BadRequest(f"status must be one of {', '.join(RecipientStatus)}, got {status!r}")

    def read(session: Session, now: datetime) -> RecipientsPublic:
        service.get_campaign(session, campaign_id)
        service.refresh_outcomes(session, campaign_id)
        rows, total = service.recipients_page(session, campaign_id, status=status, offset=offset, limit=limit)
        return RecipientsPublic(data=[RecipientPublic.model_validate(row, from_attributes=True) for row in rows],
                                count=total)

    return await _in_transaction(request, read)


@router.get("/{campaign_id}/report", response_model=CampaignReport)
async def campaign_report(campaign_id: int, admin: CurrentAdmin, request: Request) -> CampaignReport:
    """Replies within 7 days and orders within 30 days of the send, as counts and rates of those sent."""
    def read(session: Session, now: datetime) -> CampaignReport:
        service.get_campaign(session, campaign_id)
        return CampaignReport(campaign_id=campaign_id, **service.campaign_report(session, campaign_id))

    return await _in_transaction(request, read)

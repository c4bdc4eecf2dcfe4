"""Admin routes for the message pipeline: parked messages and sending them through again."""

from __future__ import annotations

from fastapi import APIRouter, Query

from helpdesk.channels import parked
from helpdesk.channels.parked import ParkedEventsPublic
from helpdesk.channels.tasks import process_event_soon
from helpdesk.agents.deps import CurrentAdmin
from helpdesk.core.deps import SessionDep
from helpdesk.jobs.deps import JobsDep

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

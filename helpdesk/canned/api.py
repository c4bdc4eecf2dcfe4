"""Canned responses: list and search (what the "/" picker calls), create."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlalchemy import func, or_
from sqlmodel import select

from helpdesk.audit import service as audit
from helpdesk.canned.models import CannedResponse
from helpdesk.canned.schemas import CannedResponseCreate, CannedResponsePublic, CannedResponsesPublic
from helpdesk.agents.deps import CurrentAgent, CurrentSupervisor
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import Conflict

router = APIRouter(prefix="/api/canned-responses", tags=["canned responses"])


@router.get("", response_model=CannedResponsesPublic)
def list_canned_responses(
    agent: CurrentAgent, session: SessionDep, q: str = Query("", max_length=100),
    locale: str | None = Query(None, pattern=r"^(vi|en)$"), limit: int = Query(50, ge=1, le=200),
) -> CannedResponsesPublic:
    """Saved replies whose shortcut, title or text contains ``q`` (shortcut matches first)."""
    query = select(CannedResponse)
    if q:
        needle = f"%{q.lower()}%"
        query = query.where(or_(func.lower(CannedResponse.shortcut).like(needle),
                                func.lower(CannedResponse.title).like(needle),
                                func.lower(CannedResponse.text).like(needle)))
    if locale:
        query = query.where(CannedResponse.locale == locale)
    rows = session.exec(query.order_by(CannedResponse.shortcut).limit(limit)).all()
    lowered = q.lower()
    rows = sorted(rows, key=lambda r: (not r.shortcut.lower().startswith(lowered), r.shortcut))
    return CannedResponsesPublic(data=[CannedResponsePublic.model_validate(r) for r in rows], count=len(rows))


@router.post("", response_model=CannedResponsePublic, status_code=201)
def create_canned_response(body: CannedResponseCreate, agent: CurrentSupervisor,
                           session: SessionDep) -> CannedResponsePublic:
    """Save a reply for everyone (supervisors and admins)."""
    if session.exec(select(CannedResponse).where(CannedResponse.shortcut == body.shortcut)).first():
        raise Conflict(f"shortcut /{body.shortcut} already exists")
    row = CannedResponse(**body.model_dump(), created_by=agent.id)
    session.add(row)
    session.flush()
    audit.record(session, "canned_response_created", "canned_response", row.id, actor_type="agent",
                 actor_id=agent.id, shortcut=body.shortcut)
    return CannedResponsePublic.model_validate(row)

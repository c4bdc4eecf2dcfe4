"""Canned responses: list and search (what the "/" picker calls), create, edit, delete, and fill in
their placeholders for a conversation."""

from __future__ import annotations

from fastapi import APIRouter, Query, Response
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from helpdesk.audit import service as audit
from helpdesk.canned.models import CannedResponse
from helpdesk.canned.placeholders import PLACEHOLDERS, fill_placeholders, unknown_placeholders
from helpdesk.canned.schemas import (
    CannedExpanded,
    CannedExpandRequest,
    CannedResponseCreate,
    CannedResponsePublic,
    CannedResponsesPublic,
    CannedResponseUpdate,
    PlaceholderPublic,
)
from helpdesk.agents.deps import CurrentAgent, CurrentSupervisor
from helpdesk.conversations.service import get_conversation_for
from helpdesk.core.deps import SessionDep, SettingsDep
from helpdesk.core.errors import BadRequest, Conflict, NotFound
from helpdesk.customers.models import Customer
from helpdesk.shop.models import Order

router = APIRouter(prefix="/api/canned-responses", tags=["canned responses"])


def _check_placeholders(text: str) -> None:
    unknown = unknown_placeholders(text)
    if unknown:
        raise BadRequest(f"unknown placeholder {', '.join('{' + name + '}' for name in unknown)}: use "
                         f"{', '.join('{' + name + '}' for name in PLACEHOLDERS)}")


def _get(session: Session, response_id: int) -> CannedResponse:
    row = session.get(CannedResponse, response_id)
    if row is None:
        raise NotFound(f"canned response {response_id} not found")
    return row


@router.get("/placeholders", response_model=list[PlaceholderPublic])
def list_placeholders(_agent: CurrentAgent) -> list[PlaceholderPublic]:
    """The placeholders a saved reply may use, filled in when an agent inserts it."""
    return [PlaceholderPublic(name=name, description=text) for name, text in PLACEHOLDERS.items()]


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
    _check_placeholders(body.text)
    row = CannedResponse(**body.model_dump(), created_by=agent.id)
    session.add(row)
    session.flush()
    audit.record(session, "canned_response_created", "canned_response", row.id, actor_type="agent",
                 actor_id=agent.id, shortcut=body.shortcut)
    return CannedResponsePublic.model_validate(row)


@router.patch("/{response_id}", response_model=CannedResponsePublic)
def update_canned_response(response_id: int, body: CannedResponseUpdate, agent: CurrentSupervisor,
                           session: SessionDep) -> CannedResponsePublic:
    """Change a saved reply (supervisors and admins); 409 for a shortcut another reply has."""
    row = _get(session, response_id)
    changes = body.model_dump(exclude_unset=True)
    for field in ("shortcut", "title", "text", "locale"):
        if changes.get(field, "") is None:
            raise BadRequest(f"{field} cannot be empty")
    if "shortcut" in changes and changes["shortcut"] != row.shortcut and session.exec(
            select(CannedResponse).where(CannedResponse.shortcut == changes["shortcut"])).first():
        raise Conflict(f"shortcut /{changes['shortcut']} already exists")
    if "text" in changes:
        _check_placeholders(changes["text"])
    for field, value in changes.items():
        setattr(row, field, value)
    session.flush()
    audit.record(session, "canned_response_updated", "canned_response", row.id, actor_type="agent",
                 actor_id=agent.id, fields=",".join(sorted(changes)))
    return CannedResponsePublic.model_validate(row)


@router.delete("/{response_id}", status_code=204)
def delete_canned_response(response_id: int, agent: CurrentSupervisor, session: SessionDep) -> Response:
    """Delete a saved reply (supervisors and admins)."""
    row = _get(session, response_id)
    audit.record(session, "canned_response_deleted", "canned_response", row.id, actor_type="agent",
                 actor_id=agent.id, shortcut=row.shortcut)
    session.delete(row)
    return Response(status_code=204)


@router.post("/{response_id}/expand", response_model=CannedExpanded)
def expand_canned_response(response_id: int, body: CannedExpandRequest, agent: CurrentAgent,
                           session: SessionDep, settings: SettingsDep) -> CannedExpanded:
    """The reply's text with the conversation's customer name, latest order code, the agent's and the
    shop's names filled in (what the inbox inserts into the composer)."""
    row = _get(session, response_id)
    conversation = get_conversation_for(session, agent, body.conversation_id)
    customer = session.get(Customer, conversation.customer_id) if conversation.customer_id else None
    order_code = None
    if customer is not None:
        order_code = session.exec(select(Order.code).where(Order.customer_id == customer.id)
                                  .order_by(col(Order.created_at).desc(), col(Order.id).desc())).first()
    text, missing = fill_placeholders(row.text, {
        "customer_name": customer.name if customer is not None else None, "order_code": order_code,
        "agent_name": agent.name, "shop_name": settings.shop.name})
    return CannedExpanded(text=text, missing=missing)

"""Routes for the shop's order system and agents about after-delivery care: see an order's care
sequence. Marking orders delivered and importing them are the shop's routes (``helpdesk/shop/api.py``)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlmodel import Session

from helpdesk.care import service
from helpdesk.care.schemas import CareMessagePublic, OrderCarePublic
from helpdesk.core.deps import SessionDep
from helpdesk.shop.deps import CallerDep, order_for
from helpdesk.shop.models import Order

router = APIRouter(prefix="/api/orders", tags=["orders"])


def order_care_public(session: Session, order: Order, *, newly_delivered: bool = False) -> OrderCarePublic:
    """The order's delivery and its care sequence, as the order routes answer."""
    rows = service.care_messages_for_order(session, order)
    data = [
        CareMessagePublic(id=care.id, kind=care.kind, identity_id=identity.id, channel=identity.channel,
                          recipient_id=identity.external_id, status=care.status, planned_at=care.planned_at,
                          due_at=care.due_at, sent_at=care.sent_at, reason=care.reason,
                          message_id=care.message_id)
        for care, identity in rows
    ]
    return OrderCarePublic(code=order.code, status=order.status, delivered_at=order.delivered_at,
                           newly_delivered=newly_delivered,
                           awaiting_customer=not data and service.has_care_plan(session, order), data=data,
                           count=len(data))


@router.get("/{code}/care", response_model=OrderCarePublic)
def order_care(code: str, caller: CallerDep, session: SessionDep) -> OrderCarePublic:
    """The order's care sequence: what is scheduled, sent, skipped (with the reason) or cancelled."""
    return order_care_public(session, order_for(session, caller, code))

"""Routes for the shop's order system and agents: mark an order delivered, import orders, see an
order's care sequence."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, UploadFile
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from connectors.base import secrets_match
from helpdesk.agents.models import Agent, AgentRole
from helpdesk.care import service
from helpdesk.care.schemas import (
    CareMessagePublic,
    ImportRowErrorPublic,
    OrderCarePublic,
    OrderDelivered,
    OrderImportPublic,
)
from helpdesk.care.tasks import care_policy, send_due_care_soon
from helpdesk.core.deps import RuntimeDep, SessionDep, get_current_agent
from helpdesk.core.errors import BadRequest, CareDeskError, NotFound, Unauthorized
from helpdesk.customers.models import Customer
from helpdesk.customers.service import may_see_customer
from helpdesk.shop import imports
from helpdesk.shop import service as shop
from helpdesk.shop.flows import deliver_order
from helpdesk.shop.models import Order

router = APIRouter(prefix="/api/orders", tags=["orders"])

_bearer = HTTPBearer(auto_error=False, description="Agent token from POST /api/auth/token")
MAX_IMPORT_BYTES = 5_000_000


class PayloadTooLarge(CareDeskError):
    """The upload is bigger than an import may be."""

    status = 413


@dataclass(frozen=True)
class Caller:
    """Who called: an agent (by bearer token) or the shop's order system (by API key)."""

    actor_type: str
    actor_id: int | None = None
    #: the agent, when an agent called: what they are shown is limited to the customers they may see
    agent: Agent | None = None


def order_system_or_agent(
    request: Request,
    runtime: RuntimeDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """Accept ``X-Api-Key`` equal to CAREDESK_INTEGRATION__API_KEY, or an agent's bearer token."""
    if x_api_key is not None:
        # An empty configured key never matches: the integration is off until a key is set.
        if not secrets_match(runtime.settings.integration.api_key.get_secret_value(), x_api_key):
            raise Unauthorized("invalid API key")
        return Caller("integration")
    agent = get_current_agent(request=request, session=session, credentials=credentials)
    return Caller("agent", agent.id, agent)


CallerDep = Annotated[Caller, Depends(order_system_or_agent)]


def _order_for(session: Session, caller: Caller, code: str) -> Order:
    """The order, if the caller may see it: the order system sees every order, an agent those of the
    customers they may see (the same 404 as for an unknown code, so that codes cannot be probed)."""
    order = shop.get_order(session, code)
    if caller.agent is not None and caller.agent.role != AgentRole.admin and not any(
            may_see_customer(session, caller.agent, session.get(Customer, customer_id))
            for customer_id in sorted(shop.order_customer_ids(session, order))):
        raise NotFound(f"order {code} not found")
    return order


def _order_care(session: Session, order: Order, *, newly_delivered: bool = False) -> OrderCarePublic:
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


# 422 is either the file's errors by line or, for a request without a file, FastAPI's validation errors
@router.post("/import", response_model=OrderImportPublic,
             responses={422: {"description": "errors by line, nothing imported; or no file in the request",
                              "content": {"application/json": {"schema": {"anyOf": [
                                  {"$ref": "#/components/schemas/OrderImportPublic"},
                                  {"$ref": "#/components/schemas/HTTPValidationError"}]}}}}})
def import_orders(file: UploadFile, caller: CallerDep, runtime: RuntimeDep, session: SessionDep):
    """Create or update orders from a CSV file and mark delivered ones delivered; all or nothing."""
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"an import may be at most {MAX_IMPORT_BYTES // 1_000_000} MB")
    policy, now = care_policy(runtime), runtime.clock()
    rows, errors = imports.read_orders_csv(data, timezone=policy.timezone, now=now)
    errors += imports.check_rows_against_orders(session, rows)
    if errors:
        report = OrderImportPublic(imported=False, errors=[
            ImportRowErrorPublic(line=e.line, error=e.error) for e in sorted(errors, key=lambda e: e.line)])
        return JSONResponse(report.model_dump(mode="json"), status_code=422)
    report = imports.import_orders(session, rows, policy=policy, now=now, actor_type=caller.actor_type,
                                   actor_id=caller.actor_id)
    session.commit()
    for code in report.delivered_codes:
        runtime.events.publish_soon("order_delivered", code=code, source="import")
    send_due_care_soon(runtime)
    return OrderImportPublic(imported=True, created=report.created, updated=report.updated,
                             delivered=report.delivered, care_scheduled=report.care_scheduled)


@router.post("/{code}/delivered", response_model=OrderCarePublic)
def order_delivered(
    code: str, caller: CallerDep, runtime: RuntimeDep, session: SessionDep,
    body: OrderDelivered | None = None,
) -> OrderCarePublic:
    """Mark an order delivered and start its care sequence; a repeated call schedules nothing twice."""
    body = body or OrderDelivered()
    policy, now = care_policy(runtime), runtime.clock()
    order = _order_for(session, caller, code)
    identity = None
    if body.channel is not None:
        identity = shop.identity_for_delivery(session, order, body.channel, body.external_id)
    delivered_at = body.delivered_at
    if delivered_at is not None and delivered_at.tzinfo is None:
        delivered_at = delivered_at.replace(tzinfo=policy.timezone)
    if delivered_at is not None and delivered_at > now + timedelta(minutes=5):
        raise BadRequest("delivered_at is in the future")
    outcome = deliver_order(session, order, policy=policy, now=now, delivered_at=delivered_at, identity=identity,
                            actor_type=caller.actor_type, actor_id=caller.actor_id)
    session.commit()
    runtime.events.publish_soon("order_delivered", code=order.code, order_id=order.id,
                                newly_delivered=outcome.newly_delivered, scheduled=outcome.scheduled)
    send_due_care_soon(runtime)  # the thank-you goes at once, not at the next tick
    return _order_care(session, order, newly_delivered=outcome.newly_delivered)


@router.get("/{code}/care", response_model=OrderCarePublic)
def order_care(code: str, caller: CallerDep, session: SessionDep) -> OrderCarePublic:
    """The order's care sequence: what is scheduled, sent, skipped (with the reason) or cancelled."""
    return _order_care(session, _order_for(session, caller, code))


"""Routes for the shop's order system and agents: import orders, mark an order delivered."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, UploadFile
from fastapi.responses import JSONResponse

from helpdesk.care.api import order_care_public
from helpdesk.care.schemas import OrderCarePublic
from helpdesk.care.tasks import care_policy
from helpdesk.core.deps import ClockDep, EventsDep, SessionDep, SettingsDep
from helpdesk.core.errors import BadRequest, CareDeskError
from helpdesk.shop import imports
from helpdesk.shop import service as shop
from helpdesk.shop.deps import CallerDep, order_for
from helpdesk.shop.flows import deliver_order
from helpdesk.shop.schemas import ImportRowErrorPublic, OrderDelivered, OrderImportPublic

router = APIRouter(prefix="/api/orders", tags=["orders"])

MAX_IMPORT_BYTES = 5_000_000


class PayloadTooLarge(CareDeskError):
    """The upload is bigger than an import may be."""

    status = 413


# 422 is either the file's errors by line or, for a request without a file, FastAPI's validation errors
@router.post("/import", response_model=OrderImportPublic,
             responses={422: {"description": "errors by line, nothing imported; or no file in the request",
                              "content": {"application/json": {"schema": {"anyOf": [
                                  {"$ref": "#/components/schemas/OrderImportPublic"},
                                  {"$ref": "#/components/schemas/HTTPValidationError"}]}}}}})
def import_orders(file: UploadFile, caller: CallerDep, settings: SettingsDep, clock: ClockDep, events: EventsDep,
                  session: SessionDep):
    """Create or update orders from a CSV file and mark delivered ones delivered; all or nothing, but for
    lines whose only fault is a malformed phone or email: those are left out and listed in ``errors``
    (line and reason), the others imported."""
    data = file.file.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"an import may be at most {MAX_IMPORT_BYTES // 1_000_000} MB")
    policy, now = care_policy(settings), clock.now()
    rows, errors = imports.read_orders_csv(data, timezone=policy.timezone, now=now)
    errors += imports.check_rows_against_orders(session, rows)
    listed = [ImportRowErrorPublic(line=e.line, error=e.error) for e in sorted(errors, key=lambda e: e.line)]
    if imports.blocking(errors):
        report = OrderImportPublic(imported=False, errors=listed)
        return JSONResponse(report.model_dump(mode="json"), status_code=422)
    report = imports.import_orders(session, rows, policy=policy, now=now, actor_type=caller.actor_type,
                                   actor_id=caller.actor_id)
    delivered = [dict(code=outcome.order.code, order_id=outcome.order.id, newly_delivered=outcome.newly_delivered,
                      scheduled=outcome.scheduled) for outcome in report.deliveries]
    session.commit()
    for event in delivered:  # care listens: what it scheduled goes out now (helpdesk/care/listeners.py)
        events.publish_soon("order_delivered", **event, source="import")
    return OrderImportPublic(imported=True, created=report.created, updated=report.updated,
                             delivered=report.delivered, care_scheduled=report.care_scheduled,
                             errors=listed)


@router.post("/{code}/delivered", response_model=OrderCarePublic)
def order_delivered(
    code: str, caller: CallerDep, settings: SettingsDep, clock: ClockDep, events: EventsDep, session: SessionDep,
    body: OrderDelivered | None = None,
) -> OrderCarePublic:
    """Mark an order delivered and start its care sequence; a repeated call schedules nothing twice."""
    body = body or OrderDelivered()
    policy, now = care_policy(settings), clock.now()
    order = order_for(session, caller, code)
    shop.update_contact(session, order, email=body.email, phone=body.phone, name=body.name)
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
    # care listens: the thank-you goes at once, not at the next tick (helpdesk/care/listeners.py)
    events.publish_soon("order_delivered", code=order.code, order_id=order.id,
                                newly_delivered=outcome.newly_delivered, scheduled=outcome.scheduled)
    return order_care_public(session, order, newly_delivered=outcome.newly_delivered)

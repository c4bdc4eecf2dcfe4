"""Reminders from product data, on the care sequence's rails: maintenance reminders from each ordered
product's ``care_schedule`` (every N months after delivery) and a notice 30 days before each warranty
of the order ends.

Each reminder is one ``care_messages`` row like the after-delivery steps, created with them when the
order's care is scheduled for an identity, so the same periodic task sends it and the same rules apply
at send time (quiet hours, platform windows and nights, opt-out, an agent talking, one channel per
step). Their ``kind`` names the occurrence, which keeps the (order, identity, kind) key unique:
``mnt:<order line>:<schedule step>:<n>`` for the n-th maintenance reminder of a step,
``wexp:<warranty id>`` for a warranty's expiry notice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from helpdesk.care.models import CareMessage, CarePlan
from helpdesk.shop.models import Order, Product, Warranty
from helpdesk.shop.service import add_months

MAINTENANCE = "mnt"
WARRANTY_EXPIRY = "wexp"
#: how far after delivery maintenance reminders are planned (a repeat order plans its own)
HORIZON_MONTHS = 24
#: the warranty-expiry notice goes this long before the warranty ends
WARRANTY_NOTICE = timedelta(days=30)
#: how long after a care message a customer's message on the same identity counts as a reply to it
REPLY_WINDOW = timedelta(days=7)


def reminder_type(kind: str) -> str | None:
    """"maintenance" or "warranty_expiry" for a reminder's kind, None for the other care steps."""
    prefix = kind.split(":", 1)[0]
    return {MAINTENANCE: "maintenance", WARRANTY_EXPIRY: "warranty_expiry"}.get(prefix)


def template_step(kind: str) -> str:
    """The step a platform template is mapped to (CAREDESK_ZNS__TEMPLATES): a reminder's type
    ("maintenance", "warranty_expiry"), every occurrence alike; the kind itself for the other steps."""
    return reminder_type(kind) or kind


def _product(session: Session, sku: Any) -> Product | None:
    return session.exec(select(Product).where(Product.sku == sku)).first() if sku else None


def reminder_steps(session: Session, order: Order, delivered_at: datetime) -> list[tuple[str, datetime]]:
    """Every reminder the order's products and warranties call for, as (kind, planned time)."""
    steps = []
    for line_index, line in enumerate(order.items):
        product = _product(session, line.get("sku"))
        for step_index, step in enumerate(product.care_schedule if product else []):
            every = int(step["every_months"])
            for n in range(1, HORIZON_MONTHS // every + 1):
                steps.append((f"{MAINTENANCE}:{line_index}:{step_index}:{n}", add_months(delivered_at, every * n)))
    for warranty in session.exec(select(Warranty).where(Warranty.order_id == order.id).order_by(Warranty.id)):
        notice = warranty.ends_at - WARRANTY_NOTICE
        if notice > delivered_at:
            steps.append((f"{WARRANTY_EXPIRY}:{warranty.id}", notice))
    return steps


def schedule_reminders(session: Session, plan: CarePlan, order: Order, identity_id: int, *, first_allowed,
                       now: datetime, existing: set[str]) -> int:
    """Create the identity's reminder rows the plan lacks, for reminders still ahead (one already past
    is never sent late); how many were added. ``first_allowed`` moves a time out of quiet hours."""
    added = 0
    for kind, planned in reminder_steps(session, order, plan.delivered_at):
        if kind in existing or planned <= now:
            continue
        row = CareMessage(order_id=plan.order_id, identity_id=identity_id, kind=kind, planned_at=planned,
                          due_at=first_allowed(planned), created_at=now, updated_at=now)
        try:
            with session.begin_nested():
                session.add(row)
                session.flush()
            added += 1
        except IntegrityError:
            pass  # a concurrent scheduling added it first
    return added


def maintenance_step(session: Session, order: Order, kind: str) -> tuple[Product, dict[str, Any]] | None:
    """The product and care-schedule step a maintenance reminder is for, or None when the shop data
    no longer has it (the product's schedule changed since it was planned)."""
    try:
        _prefix, line_index, step_index, _n = kind.split(":")
        line = order.items[int(line_index)]
    except (ValueError, IndexError):
        return None
    product = _product(session, line.get("sku"))
    schedule = product.care_schedule if product else []
    return (product, schedule[int(step_index)]) if int(step_index) < len(schedule) else None


def expiring_warranty(session: Session, order: Order, kind: str) -> tuple[Warranty, Product] | None:
    """The warranty (and its product) an expiry notice is for, if it is still the order's."""
    try:
        warranty = session.get(Warranty, int(kind.split(":")[1]))
    except (ValueError, IndexError):
        return None
    if warranty is None or warranty.order_id != order.id:
        return None
    return warranty, session.get(Product, warranty.product_id)


def reminder_gone(session: Session, order: Order, kind: str, now: datetime) -> str | None:
    """Why a reminder must not go any more (its step left the shop data, the warranty ended or is no
    longer the order's), or None."""
    kind_of = reminder_type(kind)
    if kind_of == "maintenance" and maintenance_step(session, order, kind) is None:
        return "the product's care schedule no longer has this reminder"
    if kind_of == "warranty_expiry":
        found = expiring_warranty(session, order, kind)
        if found is None:
            return "the warranty is no longer this order's"
        if found[0].ends_at <= now:
            return "the warranty has ended"
    return None

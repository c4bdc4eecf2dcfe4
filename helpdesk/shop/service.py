"""Orders, products and warranties: loading the demo shop, looking orders up, marking them delivered
and starting their warranties. Nothing here talks HTTP or commits; callers own the transaction."""

from __future__ import annotations

import calendar
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from helpdesk.audit import service as audit
from helpdesk.core.db import utcnow
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import normalise_phone, primary_customer
from helpdesk.shop.directory import normalise_order_code
from helpdesk.shop import purchases  # noqa: F401  (keeps customer_purchases in step with order writes)
from helpdesk.shop.models import Order, OrderStatus, Product, Warranty
from nlu import yaml_io

log = logging.getLogger(__name__)


def add_months(moment, months: int):
    """The same day ``months`` later (clamped to the month's last day)."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


#: the longest maintenance interval a product may set (ten years)
MAX_EVERY_MONTHS = 120


def care_schedule_of(item: dict[str, Any]) -> list[dict[str, Any]]:
    """A product's ``care_schedule`` from the shop file, checked: each step repeats ``every_months``
    (1..120) and says ``text_vi`` (and ``text_en``, else the Vietnamese text is used). ValueError names
    the product and the step."""
    steps = item.get("care_schedule") or []
    if not isinstance(steps, list):
        raise ValueError(f"product {item.get('sku')}: care_schedule must be a list of steps")
    checked = []
    for index, step in enumerate(steps, 1):
        where = f"product {item.get('sku')}, care_schedule step {index}"
        if not isinstance(step, dict):
            raise ValueError(f"{where}: a step is a mapping with every_months and text_vi")
        every = step.get("every_months")
        if not isinstance(every, int) or isinstance(every, bool) or not 1 <= every <= MAX_EVERY_MONTHS:
            raise ValueError(f"{where}: every_months must be a whole number from 1 to {MAX_EVERY_MONTHS}, "
                             f"got {every!r}")
        text_vi = str(step.get("text_vi") or "").strip()
        if not text_vi:
            raise ValueError(f"{where}: text_vi (what the reminder says) is missing")
        checked.append({"every_months": every, "text_vi": text_vi,
                        "text_en": str(step.get("text_en") or "").strip() or text_vi})
    return checked


def load_shop_file(session: Session, path: Path) -> dict[str, int]:
    """Insert or update the products, orders and warranties described in a shop YAML file."""
    document: dict[str, Any] = yaml_io.safe_load(path.read_text(encoding="utf-8")) or {}
    counts = {"products": 0, "orders": 0, "warranties": 0}
    products: dict[str, Product] = {}
    for item in document.get("products", []):
        product = session.exec(select(Product).where(Product.sku == item["sku"])).first() or Product(sku=item["sku"],
                                                                                                      name="")
        product.name = item["name"]
        product.name_en = item.get("name_en")
        product.category = item.get("category")
        product.warranty_months = int(item.get("warranty_months", 12))
        product.care_schedule = care_schedule_of(item)
        product.price_vnd = _optional_int(item.get("price_vnd"))
        product.stock = _optional_int(item.get("stock"))
        session.add(product)
        products[product.sku] = product
        counts["products"] += 1
    session.flush()
    now = utcnow()
    for item in document.get("orders", []):
        order = session.exec(select(Order).where(Order.code == item["code"])).first() or Order(code=item["code"],
                                                                                               phone="")
        order.phone = str(item["phone"])
        order.customer_name = item.get("customer_name")
        order.status = OrderStatus(item.get("status", "pending"))
        order.items = item.get("items", [])
        order.total_vnd = int(item.get("total_vnd", 0))
        if order.status == OrderStatus.delivered:
            order.delivered_at = order.delivered_at or now - timedelta(days=int(item.get("delivered_days_ago", 0)))
        session.add(order)
        session.flush()
        counts["orders"] += 1
        for line in order.items:
            serial = line.get("serial")
            product = products.get(line.get("sku")) or session.exec(
                select(Product).where(Product.sku == line.get("sku"))).first()
            if not serial or product is None:
                continue
            warranty = session.exec(select(Warranty).where(Warranty.serial == serial)).first()
            starts = order.delivered_at or now
            if warranty is None:
                warranty = Warranty(serial=serial, product_id=product.id, order_id=order.id, starts_at=starts,
                                    ends_at=add_months(starts, product.warranty_months))
                session.add(warranty)
                counts["warranties"] += 1
    audit.record(session, "shop_data_loaded", "shop", None, source=str(path), **counts)
    return counts


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


# -- looking orders up -------------------------------------------------------------------------------


def get_order(session: Session, code: str) -> Order:
    """The order with this code (any case, with or without '#'); NotFound otherwise."""
    order = session.exec(select(Order).where(Order.code == normalise_order_code(code))).first()
    if order is None:
        raise NotFound(f"order {code} not found")
    return order


def order_customer_ids(session: Session, order: Order) -> set[int]:
    """The customers an order is theirs: its customer (following merges) and whoever verified its phone."""
    customer_ids: set[int] = set()
    phone = normalise_phone(order.phone or "")
    if phone:
        customer_ids.update(session.exec(select(Customer.id).where(
            Customer.phone == phone, col(Customer.phone_verified).is_(True),
            col(Customer.merged_into_id).is_(None))).all())
    if order.customer_id is not None:
        customer_ids.add(primary_customer(session, session.get(Customer, order.customer_id)).id)
    return customer_ids


# -- delivery and warranties -------------------------------------------------------------------------


def update_contact(session: Session, order: Order, *, email: str | None = None, phone: str | None = None,
                   name: str | None = None) -> Order:
    """Store the contact details the order system sent (already checked); what is not given stays."""
    if email is not None:
        order.email = email
    if phone is not None:
        order.phone = phone
    if name is not None:
        order.customer_name = name.strip()
    session.add(order)
    return order


def identity_for_delivery(session: Session, order: Order, channel: str, external_id: str) -> ChannelIdentity:
    """The channel identity the order system named, created if new and tied to the order's customer."""
    identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == channel,
                                                          ChannelIdentity.external_id == external_id)).first()
    if identity is None:
        customer = session.get(Customer, order.customer_id) if order.customer_id else None
        if customer is None:
            # The phone stays unverified: the order system vouches for the chat, not for the phone.
            customer = Customer(name=order.customer_name, phone=normalise_phone(order.phone or ""))
            session.add(customer)
            session.flush()
        customer = primary_customer(session, customer)
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, external_id=external_id)
        session.add(identity)
        session.flush()
    if order.customer_id is None:
        order.customer_id = primary_customer(session, session.get(Customer, identity.customer_id)).id
    return identity


def mark_order_delivered(
    session: Session, order: Order, *, now: datetime, delivered_at: datetime | None = None,
    identity: ChannelIdentity | None = None, actor_type: str = "system", actor_id: int | None = None,
) -> bool:
    """Mark the order delivered and start its warranties; whether it was not delivered before.

    A repeated call keeps the first delivery time and is audited as a repeat. The after-delivery care
    is not started here: ``helpdesk.shop.flows.deliver_order`` does both in one transaction.
    """
    if order.status == OrderStatus.cancelled:
        raise Conflict(f"order {order.code} is cancelled")
    newly = order.status != OrderStatus.delivered or order.delivered_at is None
    if newly:
        order.status = OrderStatus.delivered
        order.delivered_at = delivered_at or order.delivered_at or now
        start_warranties(session, order)
    session.add(order)
    session.flush()
    audit.record(session, "order_delivered", "order", order.id, actor_type=actor_type, actor_id=actor_id,
                 code=order.code, delivered_at=order.delivered_at.isoformat(), repeated=not newly,
                 identity_id=identity.id if identity else None)
    return newly


def start_warranties(session: Session, order: Order) -> int:
    """Start the warranties of the order's units from its delivery; creates missing ones. How many."""
    starts = order.delivered_at
    started = 0
    serials: dict[str, str | None] = {}  # serial -> sku
    for line in order.items:
        for serial in _line_serials(line):
            serials[serial] = line.get("sku")
    known = {w.serial: w for w in session.exec(select(Warranty).where(Warranty.order_id == order.id)).all()}
    for serial, sku in serials.items():
        warranty = known.get(serial) or session.exec(
            select(Warranty).where(Warranty.serial == serial)).first()
        if warranty is not None and warranty.order_id not in (None, order.id):
            log.warning("serial %s of order %s already belongs to another order's warranty", serial,
                        order.code)
            continue
        product = session.exec(select(Product).where(Product.sku == sku)).first() if sku else None
        if warranty is None:
            if product is None:
                continue  # unknown product: no warranty term to start
            warranty = Warranty(serial=serial, product_id=product.id, order_id=order.id, starts_at=starts,
                                ends_at=add_months(starts, product.warranty_months))
        known[serial] = warranty
    for warranty in known.values():
        product = session.get(Product, warranty.product_id)
        warranty.order_id = order.id
        warranty.starts_at = starts
        warranty.ends_at = add_months(starts, product.warranty_months if product else 12)
        session.add(warranty)
        started += 1
    return started


def _line_serials(line: dict[str, Any]) -> list[str]:
    serials = line.get("serials") or ([line["serial"]] if line.get("serial") else [])
    return [str(serial) for serial in serials]

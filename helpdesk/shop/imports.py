"""Importing orders from the shop's order system: a CSV file is validated whole (every line's
errors at once, nothing written), then written in one transaction, delivered rows starting their
warranties and care.

A line whose only fault is its contact (a malformed phone or email) is reported with its line and reason
and left out, and the other lines are imported: one customer's typo must not hold back the shop's other
orders. Any other fault (a bad date, status, item, a duplicate) stops the whole import, as the file
itself is then suspect."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sqlmodel import Session, col, select

from helpdesk.audit import service as audit
from helpdesk.care.service import CarePolicy
from helpdesk.customers.service import normalise_phone
from helpdesk.shop.directory import normalise_order_code
from helpdesk.shop.flows import DeliveryOutcome, deliver_order
from helpdesk.shop import purchases  # noqa: F401  (keeps customer_purchases in step with order writes)
from helpdesk.shop.models import Order, OrderStatus, Product
from helpdesk.shop.schemas import normalise_email

IMPORT_COLUMNS = ("code", "phone", "customer_name", "status", "delivered_at", "items", "serials", "email")
REQUIRED_COLUMNS = ("code", "phone")


@dataclass(frozen=True)
class ImportRowError:
    """A problem with one line of an import file (line 1 is the header)."""

    line: int
    error: str
    #: only the line's contact (phone, email) is malformed: the line is left out, the others imported
    contact: bool = False


class ContactError(ValueError):
    """A line's phone or email is malformed."""


def blocking(errors: list[ImportRowError]) -> list[ImportRowError]:
    """The errors that stop the whole import (all but malformed contacts)."""
    return [error for error in errors if not error.contact]


@dataclass(frozen=True)
class OrderRow:
    """One valid line of an order import."""

    line: int
    code: str
    phone: str
    customer_name: str | None
    status: OrderStatus
    delivered_at: datetime | None
    items: list[dict[str, Any]] | None  # None: keep the order's items
    email: str | None = None  # None: keep the order's email


@dataclass
class ImportReport:
    """What an import did, or why it did nothing."""

    created: int = 0
    updated: int = 0
    delivered: int = 0
    care_scheduled: int = 0
    errors: list[ImportRowError] = field(default_factory=list)
    #: every delivered row's outcome, repeats included (a repeat may reach a new identity)
    deliveries: list[DeliveryOutcome] = field(default_factory=list)


def read_orders_csv(
    data: bytes | str, *, timezone: tzinfo, now: datetime,
) -> tuple[list[OrderRow], list[ImportRowError]]:
    """Validate every line of an order CSV; returns the rows and every line's errors (nothing written).

    Columns: code, phone, customer_name, status, delivered_at (ISO; without a zone it is shop time),
    items (``sku:qty;sku:qty``), serials (``;``-separated, given to the units in item order) and email
    (optional). A malformed phone or email is an error with ``contact`` set (see ``blocking``).
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")  # spreadsheets often add a BOM
        except UnicodeDecodeError:
            return [], [ImportRowError(1, "the file is not UTF-8 text")]
    reader = csv.reader(io.StringIO(data))
    header = next(reader, None)
    if header is None:
        return [], [ImportRowError(1, "the file is empty")]
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    unknown = [name for name in columns if name not in IMPORT_COLUMNS]
    if missing or unknown:
        problems = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + \
                   ([f"unknown column(s): {', '.join(unknown)}"] if unknown else [])
        return [], [ImportRowError(1, "; ".join(problems) + f" (expected {', '.join(IMPORT_COLUMNS)})")]
    rows: list[OrderRow] = []
    errors: list[ImportRowError] = []
    seen: dict[str, int] = {}
    for values in reader:
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(columns):
            errors.append(ImportRowError(line, f"expected {len(columns)} fields, found {len(values)}"))
            continue
        record = {name: value.strip() for name, value in zip(columns, values, strict=True)}
        try:
            row = _order_row(line, record, timezone=timezone, now=now)
        except ContactError as exc:
            errors.append(ImportRowError(line, str(exc), contact=True))
            continue
        except ValueError as exc:
            errors.append(ImportRowError(line, str(exc)))
            continue
        if row.code in seen:
            errors.append(ImportRowError(line, f"order {row.code} already appears on line {seen[row.code]}"))
            continue
        seen[row.code] = line
        rows.append(row)
    return rows, errors


def _order_row(line: int, record: dict[str, str], *, timezone: tzinfo, now: datetime) -> OrderRow:
    code = normalise_order_code(record.get("code", ""))
    if not code or len(code) > 32:
        raise ValueError("code is required (at most 32 characters)")
    phone = normalise_phone(record.get("phone", ""))
    email = None
    if record.get("email"):
        try:
            email = normalise_email(record["email"])
        except ValueError as exc:
            email_problem = f"email: {exc}"
        else:
            email_problem = None
    else:
        email_problem = None
    delivered_at = None
    if record.get("delivered_at"):
        try:
            delivered_at = datetime.fromisoformat(record["delivered_at"])
        except ValueError as exc:
            raise ValueError(f"delivered_at {record['delivered_at']!r} is not an ISO date and time") from exc
        if delivered_at.tzinfo is None:
            delivered_at = delivered_at.replace(tzinfo=timezone)
        delivered_at = delivered_at.astimezone(UTC)
        if delivered_at > now + timedelta(minutes=5):
            raise ValueError("delivered_at is in the future")
    status_text = record.get("status", "").lower() or ("delivered" if delivered_at else "pending")
    try:
        status = OrderStatus(status_text)
    except ValueError as exc:
        known = ", ".join(s.value for s in OrderStatus)
        raise ValueError(f"status {status_text!r} is not one of {known}") from exc
    if status == OrderStatus.delivered and delivered_at is None:
        delivered_at = now
    items = _parse_items(record.get("items", ""), record.get("serials", ""))
    name = record.get("customer_name") or None
    # checked last: a line with another fault as well is reported for that fault, which stops the import
    if phone is None:
        raise ContactError(f"phone {record.get('phone', '')!r} is not a Vietnamese mobile number")
    if email_problem:
        raise ContactError(email_problem)
    return OrderRow(line, code, phone, name[:200] if name else None, status, delivered_at, items, email)


def _parse_items(items_text: str, serials_text: str) -> list[dict[str, Any]] | None:
    serials = [serial.strip().upper() for serial in serials_text.split(";") if serial.strip()]
    if not items_text:
        if serials:
            raise ValueError("serials need items to belong to")
        return None
    items: list[dict[str, Any]] = []
    for part in items_text.split(";"):
        if not part.strip():
            continue
        sku, _, qty_text = part.strip().partition(":")
        sku = sku.strip()
        qty_text = qty_text.strip() or "1"
        if not sku or not qty_text.isdigit() or int(qty_text) < 1:
            raise ValueError(f"item {part.strip()!r} must look like SKU:quantity")
        items.append({"sku": sku, "qty": int(qty_text)})
    units = sum(item["qty"] for item in items)
    if len(serials) > units:
        raise ValueError(f"{len(serials)} serials for {units} unit(s)")
    remaining = list(serials)
    for item in items:
        mine, remaining = remaining[:item["qty"]], remaining[item["qty"]:]
        if mine:
            item["serials"] = mine
            if len(mine) == 1:
                item["serial"] = mine[0]  # the shape the demo shop file uses
    return items


def check_rows_against_orders(session: Session, rows: list[OrderRow]) -> list[ImportRowError]:
    """Errors only the stored orders reveal (a cancelled order cannot be marked delivered), so the
    write phase never stops half way."""
    delivered = {row.code: row.line for row in rows if row.status == OrderStatus.delivered}
    if not delivered:
        return []
    cancelled = session.exec(select(Order.code).where(col(Order.code).in_(delivered),
                                                      Order.status == OrderStatus.cancelled)).all()
    errors = [ImportRowError(delivered[code], f"order {code} is cancelled and cannot be marked delivered")
              for code in cancelled]
    return sorted(errors, key=lambda error: error.line)


def import_orders(
    session: Session, rows: list[OrderRow], *, policy: CarePolicy, now: datetime, actor_type: str = "system",
    actor_id: int | None = None,
) -> ImportReport:
    """Create or update the validated orders and mark delivered ones delivered (care included)."""
    report = ImportReport()
    for row in rows:
        order = session.exec(select(Order).where(Order.code == row.code)).first()
        if order is None:
            order = Order(code=row.code, phone=row.phone)
            report.created += 1
        else:
            report.updated += 1
        order.phone = row.phone
        if row.customer_name:
            order.customer_name = row.customer_name
        if row.email:
            order.email = row.email
        if row.items is not None:
            order.items = [_named_item(session, item) for item in row.items]
        if row.status != OrderStatus.delivered:
            order.status = row.status
            if row.delivered_at is not None and order.delivered_at is None:
                order.delivered_at = row.delivered_at
        session.add(order)
        session.flush()
        if row.status == OrderStatus.delivered:
            outcome = deliver_order(session, order, policy=policy, now=now, delivered_at=row.delivered_at,
                                    actor_type=actor_type, actor_id=actor_id)
            report.care_scheduled += outcome.scheduled
            report.deliveries.append(outcome)
            if outcome.newly_delivered:
                report.delivered += 1
    audit.record(session, "orders_imported", "order", None, actor_type=actor_type, actor_id=actor_id,
                 created=report.created, updated=report.updated, delivered=report.delivered)
    return report


def _named_item(session: Session, item: dict[str, Any]) -> dict[str, Any]:
    product = session.exec(select(Product).where(Product.sku == item["sku"])).first()
    return {**item, "name": product.name if product else item["sku"]}

"""Every member of a saved segment as CSV, for a shop that writes to its customers outside CareDesk
(a mailing tool, a spreadsheet for calls). Unlike the preview it carries what contacting them needs:
the full phone, an email (the customer's own, else the newest on their orders) and whether they asked
for no care messages, so the shop can respect that there too."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.reports.export import BOM, safe_cell
from helpdesk.segments.conditions import owned_by_customer, purchases
from helpdesk.shop.models import Order

COLUMNS = ("customer_id", "name", "phone", "phone_verified", "email", "channels", "orders", "last_order_at",
           "care_opted_out")
#: customers read per query while the file is written
BATCH = 500


def _rows(session: Session, ids: Sequence[int]) -> list[list[object]]:
    """The CSV rows of these customers, in the order given."""
    orders = select(func.count(Order.id)).where(*purchases()).scalar_subquery()
    last = select(func.max(Order.created_at)).where(*purchases()).scalar_subquery()
    order_email = (select(Order.email).where(owned_by_customer(), col(Order.email).is_not(None))
                   .order_by(col(Order.created_at).desc()).limit(1).scalar_subquery())
    found = {row[0]: row for row in session.exec(
        select(Customer.id, Customer.name, Customer.phone, Customer.phone_verified,
               func.coalesce(Customer.email, order_email), orders, last, Customer.care_opted_out)
        .where(col(Customer.id).in_(ids)))}
    channels: dict[int, set[str]] = {}
    for customer_id, channel in session.exec(select(ChannelIdentity.customer_id, ChannelIdentity.channel)
                                             .where(col(ChannelIdentity.customer_id).in_(ids))):
        channels.setdefault(customer_id, set()).add(channel)
    out = []
    for customer_id in ids:
        if customer_id not in found:
            continue
        _, name, phone, verified, email, count, last_at, opted_out = found[customer_id]
        out.append([customer_id, name or "", phone or "", int(bool(verified)), email or "",
                    ";".join(sorted(channels.get(customer_id, ()))), int(count or 0),
                    last_at.isoformat(timespec="seconds") if isinstance(last_at, datetime) else "",
                    int(bool(opted_out))])
    return out


def csv_chunks(engine: Engine, customer_ids: Sequence[int], *, excel: bool = False) -> Iterator[str]:
    """The CSV text: a header, then BATCH customers at a time, each batch its own short read (a slow
    download holds no transaction open)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield (BOM if excel else "") + buffer.getvalue()
    for start in range(0, len(customer_ids), BATCH):
        with Session(engine) as session:
            rows = _rows(session, customer_ids[start:start + BATCH])
        buffer.seek(0)
        buffer.truncate()
        writer.writerows([safe_cell(value) for value in row] for row in rows)
        yield buffer.getvalue()

"""Each buyer's purchases in one row (``customer_purchases``), kept up to date as orders are written.

The retention report asks, for the customers whose first purchase falls in a period, when they bought
the first and the second time, the last time, how often and for how much. Worked out from the orders
each time, that reads every order of the shop (a million rows at 100,000 customers); this table answers
it from one row per buyer (order phone), found by ``first_at`` through its index.

A purchase is an order neither cancelled nor returned. Rows are recomputed from the orders, never
incremented, so a status change, a phone corrected, or an order deleted all land right: a session
flush that writes orders recomputes the rows of every phone it touched (old and new phone), in the
same transaction. Rows loaded around the ORM (bulk SQL, a restore) are put right by :func:`rebuild`,
which the migration that made the table also ran.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, case, delete, event, func, insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel, col

from helpdesk.core.db import UTCDateTime
from helpdesk.shop.models import Order, OrderStatus

#: statuses that are no purchase
NOT_PURCHASES = (OrderStatus.cancelled, OrderStatus.returned)
#: phones recomputed per statement (well under SQLite's limit on bound parameters)
CHUNK = 500
_PENDING_KEY = "customer_purchases_phones"


class CustomerPurchase(SQLModel, table=True):
    """One buyer (order phone): first, second and last purchase, how many, and how much in all."""

    __tablename__ = "customer_purchases"

    phone: str = Field(primary_key=True, max_length=20)
    first_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    #: the first purchase after ``first_at`` (None: bought once)
    second_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    last_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    orders: int = 0
    total_vnd: int = Field(default=0, sa_type=BigInteger, nullable=False)


def _summary_select(phones: list[str] | None):
    """SELECT phone, first_at, second_at, last_at, orders, total_vnd from the orders (of ``phones``)."""
    conditions = [col(Order.status).not_in(NOT_PURCHASES)]
    if phones is not None:
        conditions.append(col(Order.phone).in_(phones))
    bought = select(Order.phone.label("phone"), Order.created_at.label("at"), Order.total_vnd.label("vnd"),
                    func.min(Order.created_at).over(partition_by=Order.phone).label("first_at")
                    ).where(*conditions).subquery("bought")
    return select(bought.c.phone, func.min(bought.c.at),
                  func.min(case((bought.c.at > bought.c.first_at, bought.c.at))),
                  func.max(bought.c.at), func.count(), func.coalesce(func.sum(bought.c.vnd), 0)
                  ).group_by(bought.c.phone)


_COLUMNS = ["phone", "first_at", "second_at", "last_at", "orders", "total_vnd"]


def refresh(connection: Connection, phones: Iterable[str]) -> None:
    """Recompute the rows of ``phones`` from their orders (a phone with no purchase left loses its row)."""
    table = CustomerPurchase.__table__
    wanted = sorted({p for p in phones if p})
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        connection.execute(delete(table).where(table.c.phone.in_(chunk)))
        connection.execute(insert(table).from_select(_COLUMNS, _summary_select(chunk)))


def rebuild(connection: Connection) -> None:
    """Recompute every row from the orders (after orders were loaded without the ORM)."""
    table = CustomerPurchase.__table__
    connection.execute(delete(table))
    connection.execute(insert(table).from_select(_COLUMNS, _summary_select(None)))


@event.listens_for(OrmSession, "before_flush")
def _note_phones(session: OrmSession, _context, _instances) -> None:
    """Remember the phones of orders this flush adds, changes or deletes; for an order already stored,
    its phone as stored too (a corrected phone moves purchases off the old buyer's row)."""
    phones: set[str] = session.info.setdefault(_PENDING_KEY, set())
    stored_ids = []
    for order in (*session.new, *session.dirty, *session.deleted):
        if isinstance(order, Order):
            phones.add(order.phone)
            if order.id is not None:
                stored_ids.append(order.id)
    for start in range(0, len(stored_ids), CHUNK):
        # a Core query on the connection: no autoflush, and the rows still hold what is stored
        phones.update(session.connection().execute(
            select(Order.phone).where(col(Order.id).in_(stored_ids[start:start + CHUNK]))).scalars())


@event.listens_for(OrmSession, "after_flush")
def _refresh_phones(session: OrmSession, _context) -> None:
    """Recompute the noted phones' rows inside the flush's transaction."""
    phones = session.info.pop(_PENDING_KEY, None)
    if phones:
        refresh(session.connection(), phones)


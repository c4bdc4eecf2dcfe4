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

Two more facts per buyer let the retention report read nothing but these rows for its new customers:

- ``months_mask``: bit *k* set when the buyer bought in the *k*-th shop-local month after the month of
  their first purchase (bit 0: that month itself), up to ``MASK_MONTHS`` months; ``months_tz`` names the
  time zone those months were counted in. The monthly cohorts need exactly this. A row counted in
  another zone (the shop's changed) or not at all (NULL) is worked out from the orders instead.
- ``nps_answers`` and ``nps_score_sum``: the NPS answers given about the buyer's orders (any status),
  for the report's split of the repeat rate by NPS. An NPS answer written through the ORM recomputes
  the row of its order's phone, as an order does.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, bindparam, case, delete, event, func, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel, col

from helpdesk.core.config import get_settings
from helpdesk.core.db import UTCDateTime
from helpdesk.nps.models import NpsResponse
from helpdesk.shop.models import Order, OrderStatus

#: statuses that are no purchase
NOT_PURCHASES = (OrderStatus.cancelled, OrderStatus.returned)
#: phones recomputed per statement (well under SQLite's limit on bound parameters)
CHUNK = 500
_PENDING_KEY = "customer_purchases_phones"
#: orders read at a time while counting every buyer's months
STREAM_ROWS = 20_000
#: months after the first purchase's month that ``months_mask`` covers (bits 0..62 of a signed 64-bit
#: integer); the cohort chart follows a year
MASK_MONTHS = 62


class CustomerPurchase(SQLModel, table=True):
    """One buyer (order phone): first, second and last purchase, how many, and how much in all."""

    __tablename__ = "customer_purchases"

    phone: str = Field(primary_key=True, max_length=20)
    first_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    #: the first purchase after ``first_at`` (None: bought once)
    second_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    #: indexed for churn: the buyers whose last purchase is after a past period's end
    last_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    orders: int = 0
    total_vnd: int = Field(default=0, sa_type=BigInteger, nullable=False)
    #: bit k: bought in the k-th shop-local month after the first purchase's (in ``months_tz``)
    months_mask: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    months_tz: str | None = Field(default=None, max_length=64)
    #: NPS answers about this buyer's orders: how many, and their scores added up
    nps_answers: int = 0
    nps_score_sum: int = 0


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


def shop_timezone() -> str:
    """The zone ``months_mask`` is counted in: the shop's, as the process settings give it."""
    return get_settings().shop.timezone


def _month_number(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return local.year * 12 + local.month - 1


def _fill_extras(connection: Connection, phones: list[str] | None, timezone: str) -> None:
    """Set ``months_mask``/``months_tz`` and the NPS figures of the rows of ``phones`` (None: all rows).

    The months are counted here in Python (zone rules SQLite lacks); one pass over the buyers' purchases
    in (phone, time) order."""
    table = CustomerPurchase.__table__
    tz = ZoneInfo(timezone)
    conditions = [col(Order.status).not_in(NOT_PURCHASES)]
    nps_conditions = [col(NpsResponse.score).is_not(None)]
    if phones is not None:
        conditions.append(col(Order.phone).in_(phones))
        nps_conditions.append(col(Order.phone).in_(phones))
    masks: dict[str, int] = {}
    first_month: dict[str, int] = {}
    statement = (select(Order.phone, Order.created_at).where(*conditions)
                 .order_by(Order.phone, Order.created_at))
    if phones is None:
        # streamed (a server-side cursor on PostgreSQL): a rebuild reads every order of the shop; a few
        # buyers' orders come in one round trip
        statement = statement.execution_options(yield_per=STREAM_ROWS)
    bought = connection.execute(statement)
    for phone, at in bought:
        month = _month_number(at, tz)
        offset = month - first_month.setdefault(phone, month)
        if offset <= MASK_MONTHS:
            masks[phone] = masks.get(phone, 0) | (1 << offset)
    nps = {phone: (answers, total) for phone, answers, total in connection.execute(
        select(Order.phone, func.count(), func.sum(NpsResponse.score))
        .join(Order, Order.id == NpsResponse.order_id).where(*nps_conditions).group_by(Order.phone))}
    values = [{"key": phone, "mask": mask, "tz": timezone, "answers": nps.get(phone, (0, 0))[0],
               "total": int(nps.get(phone, (0, 0))[1] or 0)} for phone, mask in masks.items()]
    if values:
        connection.execute(update(table).where(table.c.phone == bindparam("key")).values(
            months_mask=bindparam("mask"), months_tz=bindparam("tz"), nps_answers=bindparam("answers"),
            nps_score_sum=bindparam("total")), values)


def fill_extras(connection: Connection, timezone: str | None = None) -> None:
    """Set the months and NPS figures of every row (the migration that added them runs this)."""
    _fill_extras(connection, None, timezone or shop_timezone())


def refresh(connection: Connection, phones: Iterable[str], timezone: str | None = None) -> None:
    """Recompute the rows of ``phones`` from their orders (a phone with no purchase left loses its row)."""
    table = CustomerPurchase.__table__
    wanted = sorted({p for p in phones if p})
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        connection.execute(delete(table).where(table.c.phone.in_(chunk)))
        connection.execute(insert(table).from_select(_COLUMNS, _summary_select(chunk)))
        _fill_extras(connection, chunk, timezone or shop_timezone())


def rebuild(connection: Connection, timezone: str | None = None) -> None:
    """Recompute every row from the orders (after orders were loaded without the ORM)."""
    table = CustomerPurchase.__table__
    connection.execute(delete(table))
    connection.execute(insert(table).from_select(_COLUMNS, _summary_select(None)))
    fill_extras(connection, timezone)


@event.listens_for(OrmSession, "before_flush")
def _note_phones(session: OrmSession, _context, _instances) -> None:
    """Remember the phones of orders this flush adds, changes or deletes; for an order already stored,
    its phone as stored too (a corrected phone moves purchases off the old buyer's row). Likewise the
    phones of the orders NPS answers are about (the order named now, and the one stored)."""
    phones: set[str] = session.info.setdefault(_PENDING_KEY, set())
    stored_ids: list[int] = []
    order_ids: list[int] = []
    answer_ids: list[int] = []
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, Order):
            phones.add(row.phone)
            if row.id is not None:
                stored_ids.append(row.id)
        elif isinstance(row, NpsResponse):
            if row.order_id is not None:
                order_ids.append(row.order_id)
            if row.id is not None:
                answer_ids.append(row.id)
    if not (stored_ids or order_ids or answer_ids):
        return
    # Core queries on the connection: no autoflush, and the rows still hold what is stored
    connection = session.connection()
    for start in range(0, len(answer_ids), CHUNK):
        order_ids += [i for i in connection.execute(select(NpsResponse.order_id).where(
            col(NpsResponse.id).in_(answer_ids[start:start + CHUNK]))).scalars() if i is not None]
    wanted = stored_ids + order_ids
    for start in range(0, len(wanted), CHUNK):
        phones.update(connection.execute(
            select(Order.phone).where(col(Order.id).in_(wanted[start:start + CHUNK]))).scalars())


@event.listens_for(OrmSession, "after_flush")
def _refresh_phones(session: OrmSession, _context) -> None:
    """Recompute the noted phones' rows inside the flush's transaction."""
    phones = session.info.pop(_PENDING_KEY, None)
    if phones:
        refresh(session.connection(), phones)


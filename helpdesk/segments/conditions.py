"""A segment's conditions as SQL: each becomes a condition over the ``customers`` row it is evaluated
for (EXISTS or a scalar subquery correlated to it), the same on SQLite and PostgreSQL.

Every condition is two-valued (true or false, never NULL), so that ``not`` matches exactly the
customers the condition does not match (a customer without any CSAT rating is matched by
"not: latest CSAT at most 2").

Which orders are a customer's is the rule the rest of CareDesk follows (the inbox's customer panel,
care, ``shop.service.order_customer_ids``): orders naming the customer, and orders of the phone the
customer verified; an unverified phone is only a claim. A purchase is an order neither cancelled nor
returned (``helpdesk.shop.purchases.NOT_PURCHASES``, as the retention report counts them), dated when it
was placed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import String, and_, bindparam, case, false, func, literal, literal_column, not_, or_, select
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from helpdesk.conversations.models import Conversation, ConversationState, ConversationTag
from helpdesk.core.db import UTCDateTime
from helpdesk.core.errors import CareDeskError
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.nps.models import NpsResponse
from helpdesk.nps.service import DETRACTOR_MAX, PROMOTER_MIN
from helpdesk.ratings.models import Rating
from helpdesk.reports.service import complaint_condition
from helpdesk.segments.schemas import (
    Bought,
    Channel,
    Csat,
    LastOrder,
    Nps,
    OpenComplaint,
    OptedOut,
    OrderCount,
    Tag,
    TotalSpent,
)
from helpdesk.shop.models import Order, Product
from helpdesk.shop.purchases import NOT_PURCHASES

#: the scores of each NPS category
NPS_RANGES = {"promoter": (PROMOTER_MIN, 10), "passive": (DETRACTOR_MAX + 1, PROMOTER_MIN - 1),
              "detractor": (0, DETRACTOR_MAX)}
#: "zalo" stands for either Zalo chat
CHANNEL_NAMES = {"zalo": ("zalo_oa", "zalo_bot")}


class InvalidSegment(CareDeskError):
    """A definition that is well formed but names something that does not exist (a product)."""

    status = 422


def owned_by_customer(order=Order) -> ColumnElement[bool]:
    """The order is the customer's (the ``customers`` row of the enclosing query): it names them, or it
    is of the phone they verified."""
    return or_(order.customer_id == Customer.id,
               and_(col(Customer.phone_verified).is_(True), order.phone == Customer.phone))


def purchases(order=Order) -> list[ColumnElement[bool]]:
    """The customer's orders that are purchases."""
    return [owned_by_customer(order), col(order.status).not_in(NOT_PURCHASES)]


def _inline(value, type_=None):
    """A value written into the statement rather than sent beside it. PostgreSQL plans a statement
    psycopg has prepared (the same text run five times) once for any parameter values; that plan
    cannot see how narrow a date window or how rare a product is, and on a million orders it took
    minutes where the plan for the values took a fraction of a second."""
    return bindparam(None, value, type_=type_, literal_execute=True)


def _moment(now: datetime, days_ago: int):
    return _inline(now - timedelta(days=days_ago), UTCDateTime())


def _window(column, condition: Bought | LastOrder, now: datetime) -> list[ColumnElement[bool]]:
    """``column`` between ``to_days_ago`` and ``from_days_ago`` days before ``now``, both included."""
    bounds = []
    if condition.to_days_ago is not None:
        bounds.append(column >= _moment(now, condition.to_days_ago))
    if condition.from_days_ago is not None:
        bounds.append(column <= _moment(now, condition.from_days_ago))
    return bounds


def resolve_product(session: Session, text: str, index: int) -> list[tuple[str, str]]:
    """``(sku, name)`` of the product a condition names: the catalogue's product with that SKU, else
    those with that name (Vietnamese or English), else those whose name contains it, ignoring case;
    else, for a product the shop no longer lists, the SKU or name as order lines carry it. InvalidSegment naming the condition when nothing
    was ever sold under it."""
    wanted = text.casefold()
    products = session.exec(select(Product.sku, Product.name, Product.name_en)).all()
    by_sku = [(sku, name) for sku, name, _ in products if sku.casefold() == wanted]
    if by_sku:
        return by_sku
    by_name = [(sku, name) for sku, name, name_en in products
               if name.casefold() == wanted or (name_en or "").casefold() == wanted]
    if by_name:
        return by_name
    # "nồi cơm" for every rice cooker the shop lists (three letters at least: fewer match nearly all)
    containing = [(sku, name) for sku, name, name_en in products if len(wanted) >= 3
                  and (wanted in name.casefold() or wanted in (name_en or "").casefold())]
    if containing:
        return containing
    dialect = session.get_bind().dialect.name
    for candidate in dict.fromkeys((text, text.upper())):
        if session.exec(select(Order.id).where(_line_of([(candidate, candidate)], dialect)).limit(1)).first():
            return [(candidate, candidate)]
    raise InvalidSegment(f"condition {index + 1} (bought): no product has the SKU or name {text!r}")


def _line_of(products: Sequence[tuple[str, str]], dialect: str) -> ColumnElement[bool]:
    """The order (the ``orders`` row of the enclosing query) has a line of one of ``products``, by its
    SKU or its name (lines imported from some shops carry only the name). Order lines are a JSON list,
    read with each database's own JSON functions."""
    skus = [sku for sku, _ in products]
    names = [name for _, name in products]
    # an order stored with anything but a list of lines has no lines (PostgreSQL's json_array_elements
    # fails on it, and SQLite's json_each would walk an object's values)
    if dialect == "postgresql":
        lines = case((func.json_typeof(Order.items) == "array", Order.items),
                     else_=literal_column("'[]'::json"))
        line = func.json_array_elements(lines).table_valued("value").alias("line")
        sku, name = line.c.value.op("->>")("sku"), line.c.value.op("->>")("name")
    else:
        lines = case((func.json_type(Order.items) == "array", Order.items), else_=literal_column("'[]'"))
        line = func.json_each(lines).table_valued("value", "fullkey").alias("line")
        # read through the line's path in the list: a line that is no object then has no SKU, where
        # json_extract on its value would fail on a bare string
        sku = func.json_extract(Order.items, line.c.fullkey + ".sku")
        name = func.json_extract(Order.items, line.c.fullkey + ".name")
    return select(literal(1)).select_from(line).where(or_(sku.in_(_inline(skus, String())),
                                                          name.in_(_inline(names, String())))).exists()


def _bought(condition: Bought, now: datetime, products: Sequence[tuple[str, str]] | None, dialect: str):
    where = [*purchases(), *_window(Order.created_at, condition, now)]
    if products is not None:
        where.append(_line_of(products, dialect))
    return select(Order.id).where(*where).exists()


def _last_order(condition: LastOrder, now: datetime):
    last = select(func.max(Order.created_at)).where(*purchases()).scalar_subquery()
    return and_(last.is_not(None), *_window(last, condition, now))


def _between(value, low, high) -> ColumnElement[bool]:
    bounds = [value >= low] if low is not None else []
    if high is not None:
        bounds.append(value <= high)
    return and_(*bounds)


def _order_count(condition: OrderCount):
    count = select(func.count(Order.id)).where(*purchases()).scalar_subquery()
    return _between(count, condition.min, condition.max)


def _total_spent(condition: TotalSpent):
    spent = select(func.coalesce(func.sum(Order.total_vnd), 0)).where(*purchases()).scalar_subquery()
    return _between(spent, condition.min, condition.max)


def _open_complaint():
    return select(Conversation.id).where(Conversation.customer_id == Customer.id,
                                         Conversation.state != ConversationState.resolved,
                                         complaint_condition()).exists()


def _nps(condition: Nps):
    """The latest answer, by when it was given. Surveys are recorded on the customer, and reach them
    through an identity too once another record was merged into theirs (as the NPS service reads them)."""
    answer = aliased(NpsResponse)
    # two levels down: named, as SQLAlchemy correlates only to the query right around a subquery
    identities = (select(ChannelIdentity.id).where(ChannelIdentity.customer_id == Customer.id)
                  .correlate(Customer))
    latest = (select(answer.score)
              .where(or_(answer.customer_id == Customer.id, col(answer.identity_id).in_(identities)),
                     col(answer.score).is_not(None), col(answer.at).is_not(None))
              .order_by(col(answer.at).desc(), col(answer.id).desc()).limit(1).scalar_subquery())
    low, high = NPS_RANGES[condition.category]
    return func.coalesce(latest, -1).between(low, high)


def _csat(condition: Csat):
    rating = aliased(Rating)
    latest = (select(rating.score).where(rating.customer_id == Customer.id, rating.kind == "csat")
              .order_by(col(rating.created_at).desc(), col(rating.id).desc()).limit(1).scalar_subquery())
    return func.coalesce(latest, 0).between(condition.min or 1, condition.max or 5)


def _channel(condition: Channel):
    names = CHANNEL_NAMES.get(condition.channel, (condition.channel,))
    return select(ChannelIdentity.id).where(ChannelIdentity.customer_id == Customer.id,
                                            col(ChannelIdentity.channel).in_(names)).exists()


def _tag(condition: Tag):
    return (select(ConversationTag.tag).join(Conversation, Conversation.id == ConversationTag.conversation_id)
            .where(Conversation.customer_id == Customer.id, ConversationTag.tag == condition.tag).exists())


def compile_condition(session: Session, condition, index: int, now: datetime) -> ColumnElement[bool]:
    """One condition (the ``index``-th of its definition) as SQL over the ``customers`` row."""
    dialect = session.get_bind().dialect.name
    match condition:
        case Bought():
            products = resolve_product(session, condition.product, index) if condition.product else None
            sql = _bought(condition, now, products, dialect)
        case LastOrder():
            sql = _last_order(condition, now)
        case OrderCount():
            sql = _order_count(condition)
        case TotalSpent():
            sql = _total_spent(condition)
        case OpenComplaint():
            sql = _open_complaint()
        case Nps():
            sql = _nps(condition)
        case Csat():
            sql = _csat(condition)
        case Channel():
            sql = _channel(condition)
        case Tag():
            sql = _tag(condition)
        case OptedOut():
            sql = col(Customer.care_opted_out).is_(True)
        case _:  # pragma: no cover - the schema admits no other kind
            sql = false()
    return not_(sql) if condition.negate else sql


def compile_definition(session: Session, conditions: Sequence, now: datetime) -> list[ColumnElement[bool]]:
    """Every condition of a definition as SQL, plus "a customer in their own right" (not merged into
    another): the WHERE of a query over ``customers``."""
    return [col(Customer.merged_into_id).is_(None),
            *(compile_condition(session, c, n, now) for n, c in enumerate(conditions))]

"""Retention analytics from the shop's orders, computed in SQL (SQLite and PostgreSQL alike).

A *customer* here is an order phone (the order system knows every buyer by it; chats link to it when the
customer verifies it, or through ``orders.customer_id``). Orders cancelled or returned are no purchase.
The report's period picks the **new customers**: those whose first purchase ever falls in it.

- **Repeat-purchase rate within N days** (30/90/180): of the new customers whose first purchase is at
  least N days old, the share who bought again within N days of it. Customers too recent to tell are left
  out of the base, so the rate does not sink for the latest weeks.
- **Monthly cohorts**: new customers by the shop-local month of their first purchase; for each later month,
  the share of the cohort who bought in it (month 0 is 100%).
- **Churn** (``CAREDESK_CARE__CHURN_DAYS``, default 180): of the customers who first bought at least that
  long before the period's end, the share with no purchase in the window before it.
- **Customer lifetime value**: what the period's new customers have spent so far, on average (VND).
- **Segments**: the 90-day repeat rate of the new customers split by their NPS (average answer: promoter,
  passive, detractor, none), CSAT (average stars ≥ 4 satisfied, otherwise not, or none), whether they
  contacted support, and whether their escalated conversations met the SLA.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import and_, case, func, literal, literal_column, select, union
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from helpdesk.conversations.models import Conversation
from helpdesk.customers.models import Customer
from helpdesk.core.db import UTCDateTime
from helpdesk.ratings.models import Rating
from helpdesk.reports.nps import month_starts
from helpdesk.reports.period import Period, local_midnight
from helpdesk.reports.schemas import ReportPeriod
from helpdesk.shop.models import Order, OrderStatus
from helpdesk.shop.purchases import CustomerPurchase
from helpdesk.sla.models import SLAStatus

REPEAT_WINDOWS = (30, 90, 180)
#: how many months after the first a cohort row goes (the chart shows a year)
COHORT_MONTHS = 12
NOT_PURCHASES = (OrderStatus.cancelled, OrderStatus.returned)


class RepeatRate(BaseModel):
    """Repeat purchases within ``days`` of the first."""

    days: int
    rate: float | None
    customers: int = Field(description="new customers whose first purchase is at least `days` old (the base)")
    repeated: int


class Cohort(BaseModel):
    """New customers of one shop-local month and the share who bought in each month after."""

    month: date
    customers: int
    retention: list[float | None] = Field(description="share buying in month 0, 1, 2, …; null for months "
                                                      "not reached yet")


class Segment(BaseModel):
    """The 90-day repeat rate of one group of new customers."""

    dimension: str = Field(description="nps, csat, support or sla")
    segment: str
    customers: int
    repeated: int
    rate: float | None


class RetentionReport(BaseModel):
    """Repeat purchases, cohorts, churn and lifetime value of the period's new customers."""

    period: ReportPeriod
    new_customers: int
    repeat: list[RepeatRate]
    repeat_purchase_rate_90d: float | None
    cohorts: list[Cohort]
    churn_days: int
    churn_base: int
    churned: int
    churn_rate: float | None
    clv_vnd: float | None = Field(description="average spent so far by a new customer of the period (VND)")
    avg_orders: float | None
    segments: list[Segment]


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def days_between(session: Session, earlier, later) -> ColumnElement[float]:
    """SQL: days from ``earlier`` to ``later`` (fractional), on either database."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier) / 86400.0
    return func.julianday(later) - func.julianday(earlier)


def purchases():
    """Every purchase: (customer = phone, when, amount)."""
    return (select(Order.phone.label("phone"), Order.created_at.label("at"), Order.total_vnd.label("vnd"),
                   Order.id.label("id"))
            .where(col(Order.status).not_in(NOT_PURCHASES)).subquery("purchases"))


def customers_cte(period: Period, now: datetime, first_before: datetime | None = None):
    """Per new customer of the period (first purchase ever inside it, and before ``first_before`` when
    given): first and second purchase, how many purchases and how much so far, the latest. Read from
    ``customer_purchases`` (one row per buyer, through its ``first_at`` index), not from the orders."""
    bought = CustomerPurchase
    return (select(bought.phone.label("phone"), bought.first_at.label("first_at"),
                   bought.second_at.label("second_at"), bought.orders.label("orders"),
                   bought.total_vnd.label("vnd"), bought.last_at.label("last_at"),
                   bought.months_mask.label("months_mask"), bought.months_tz.label("months_tz"),
                   bought.nps_answers.label("nps_answers"), bought.nps_score_sum.label("nps_score_sum"))
            .where(bought.first_at >= period.start,
                   bought.first_at < min(period.end, now, first_before or now))
            .cte("per_customer"))


def _links(per_customer):
    """(helpdesk customer, phone) pairs of the phones of ``per_customer`` (one row per phone, so a join
    is enough): who verified the phone, and who is named on its orders."""
    by_phone = (select(Customer.id.label("id"), Customer.phone.label("phone"))
                .join(per_customer, per_customer.c.phone == Customer.phone)
                .where(col(Customer.phone_verified).is_(True)))
    by_order = (select(Order.customer_id, Order.phone).join(per_customer, per_customer.c.phone == Order.phone)
                .where(col(Order.customer_id).is_not(None)))
    return union(by_phone, by_order).cte("links")


def _segment_tables(per_customer):
    """Per phone of ``per_customer``, grouped once (joined to the customers rather than asked per
    customer): average CSAT stars, and whether they contacted support, were escalated, saw a breach.
    (Their NPS answers are summed up in ``customer_purchases``.)"""
    links = _links(per_customer)
    csat_by_phone = (select(links.c.phone, func.avg(Rating.score).label("stars"))
                     .join(links, links.c.id == Rating.customer_id).where(Rating.kind == "csat")
                     .group_by(links.c.phone).cte("csat_by_phone"))
    escalated = col(Conversation.escalated_at).is_not(None)
    support_by_phone = (select(links.c.phone, func.max(case((escalated, 1), else_=0)).label("escalated"),
                               func.max(case((and_(escalated, Conversation.sla_status == SLAStatus.breached), 1),
                                             else_=0)).label("breached"))
                        .join(links, links.c.id == Conversation.customer_id)
                        .group_by(links.c.phone).cte("support_by_phone"))
    return csat_by_phone, support_by_phone


def _segments(session: Session, per_customer, conditions, gap) -> list[Segment]:
    """The 90-day repeat rate of the customers matching ``conditions`` by NPS, CSAT, support and SLA."""
    csat_by_phone, support_by_phone = _segment_tables(per_customer)
    answers, scores, stars = per_customer.c.nps_answers, per_customer.c.nps_score_sum, csat_by_phone.c.stars
    groups = {
        # the average answer (scores / answers) at least 9, above 6, or not: compared as whole numbers
        "nps": case((answers == 0, "none"), (scores >= 9 * answers, "promoter"),
                    (scores > 6 * answers, "passive"), else_="detractor"),
        "csat": case((stars.is_(None), "none"), (stars >= 4, "satisfied"), else_="unsatisfied"),
        "support": case((support_by_phone.c.phone.is_(None), "not_contacted"), else_="contacted"),
        "sla": case((func.coalesce(support_by_phone.c.escalated, 0) == 0, "no_escalation"),
                    (support_by_phone.c.breached == 1, "sla_breached"), else_="within_sla"),
    }
    repeated = func.coalesce(func.sum(case((gap <= 90, 1), else_=0)), 0)
    joined = (per_customer.outerjoin(csat_by_phone, csat_by_phone.c.phone == per_customer.c.phone)
              .outerjoin(support_by_phone, support_by_phone.c.phone == per_customer.c.phone))
    rows = select(*[group.label(name) for name, group in groups.items()], func.count().label("customers"),
                  repeated.label("repeated")).select_from(joined).where(*conditions).group_by(
        *[group for group in groups.values()]).subquery("grouped")
    found = session.exec(select(rows)).all()
    segments = []
    for index, name in enumerate(groups):
        totals: dict[str, list[int]] = {}
        for row in found:
            total = totals.setdefault(row[index], [0, 0])
            total[0] += int(row.customers)
            total[1] += int(row.repeated)
        segments += [Segment(dimension=name, segment=segment, customers=customers, repeated=repeats,
                             rate=_ratio(repeats, customers)) for segment, (customers, repeats) in sorted(totals.items())]
    return segments


def retention_report(session: Session, period: Period, now: datetime, churn_days: int) -> RetentionReport:
    """Every retention figure of the period's new customers (as of ``now``)."""
    per_customer = customers_cte(period, now)
    by_cohort = _by_cohort(session, per_customer, period, now)
    totals = [sum(int(row[n]) for row in by_cohort) for n in range(3 + 2 * len(REPEAT_WINDOWS))]
    new_customers, spent, orders = totals[0], totals[1], totals[2]
    repeat = [RepeatRate(days=days, customers=totals[3 + 2 * n], repeated=totals[4 + 2 * n],
                         rate=_ratio(totals[4 + 2 * n], totals[3 + 2 * n]))
              for n, days in enumerate(REPEAT_WINDOWS)]

    churn_base, churned = _churn(session, min(period.end, now), churn_days)

    gap = days_between(session, per_customer.c.first_at, per_customer.c.second_at)
    segments = _segments(session, per_customer, [_aged(per_customer, now, 90)], gap)

    return RetentionReport(
        period=period.public(), new_customers=new_customers, repeat=repeat,
        repeat_purchase_rate_90d=repeat[1].rate, cohorts=_cohorts(session, period, now, by_cohort),
        churn_days=churn_days, churn_base=churn_base, churned=churned, churn_rate=_ratio(churned, churn_base),
        clv_vnd=round(spent / new_customers, 0) if new_customers else None,
        avg_orders=round(orders / new_customers, 2) if new_customers else None, segments=segments)


def _report_months(period: Period, now: datetime) -> list[date]:
    """The shop-local months from the period's first to the later of its end and now."""
    return month_starts(Period(period.start, max(now, period.end), period.timezone, period.tz))


def _aged(per_customer, now: datetime, days: int) -> ColumnElement[bool]:
    """Customers whose first purchase is at least ``days`` old: one comparison with a moment worked out
    here, not a difference of dates per row."""
    return per_customer.c.first_at <= literal(now - timedelta(days=days), type_=UTCDateTime)


def _from_row(per_customer, period: Period, now: datetime) -> ColumnElement[bool]:
    """Customers whose cohort months can be read from their row: counted in the report's zone, and no
    purchase dated after ``now`` (which the cohorts must not count)."""
    # coalesced: a NULL here would make the condition and its negation both unknown, counting the
    # customer on neither side
    return and_(col(per_customer.c.months_mask).is_not(None),
                func.coalesce(per_customer.c.months_tz, "") == period.timezone, per_customer.c.last_at < now)


def _by_cohort(session: Session, per_customer, period: Period, now: datetime) -> list:
    """One pass over the new customers' rows, grouped by the month of their first purchase: per cohort
    month (its index among the report's months), the customers, their spending and orders, the base and
    repeaters of each repeat window, how many must be read from their orders (see ``_from_row``), and
    for the others how many bought in month 0, 1, …, COHORT_MONTHS after the first."""
    gap = days_between(session, per_customer.c.first_at, per_customer.c.second_at)
    from_row = _from_row(per_customer, period, now)

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    columns = [func.count(), func.coalesce(func.sum(per_customer.c.vnd), 0),
               func.coalesce(func.sum(per_customer.c.orders), 0)]
    for days in REPEAT_WINDOWS:
        aged = _aged(per_customer, now, days)
        columns += [count(aged), count(and_(aged, gap <= days))]
    columns.append(count(~from_row))
    mask = per_customer.c.months_mask
    # the shifts written as plain numbers: PostgreSQL shifts a bigint by an integer only
    columns += [func.coalesce(func.sum(case((from_row, mask.op(">>")(literal_column(str(offset)))
                                             .op("&")(literal_column("1"))), else_=0)), 0)
                for offset in range(COHORT_MONTHS + 1)]
    cohort = _month_index(per_customer.c.first_at, _report_months(period, now), period.tz)
    return [tuple(row) for row in session.exec(select(*columns, cohort).group_by(cohort)).all()]


def _churn(session: Session, end: datetime, churn_days: int) -> tuple[int, int]:
    """(base, churned): buyers whose first purchase is at least ``churn_days`` before ``end``, and those
    of them with no purchase in the ``churn_days`` before it. A last purchase before that window settles
    it, one inside it too; only a buyer whose last purchase is after ``end`` (a period in the past) needs
    their orders looked at, one index probe each."""
    horizon = end - timedelta(days=churn_days)
    bought = CustomerPurchase
    later = aliased(Order)
    bought_in_window = (select(later.id).where(later.phone == bought.phone, later.created_at >= horizon,
                                               later.created_at < end,
                                               col(later.status).not_in(NOT_PURCHASES)).exists())
    base, gone = session.exec(select(func.count(), func.coalesce(func.sum(case((bought.last_at < horizon, 1),
                                                                             else_=0)), 0))
                              .where(bought.first_at < horizon)).one()
    # apart, so the first statement has no sub-query (PostgreSQL priced the two together high enough to
    # compile them, 10 ms of JIT for 100,000 rows), and this one finds its few rows by the last_at index
    later = session.exec(select(func.count()).where(bought.first_at < horizon, bought.last_at >= end,
                                                    ~bought_in_window)).scalar_one()
    return int(base), int(gone) + int(later)


def _month_index(column, starts: list[date], tz) -> ColumnElement[int]:
    """SQL: the index in ``starts`` (shop-local months) of the month ``column`` falls in; -1 before."""
    branches = [(column < local_midnight(day, tz), n - 1) for n, day in enumerate(starts)]
    return case(*branches, else_=len(starts) - 1)


def _cohorts(session: Session, period: Period, now: datetime, by_cohort: list | None = None) -> list[Cohort]:
    """Monthly cohorts of the period's new customers, each followed up to COHORT_MONTHS months (to now).

    A customer's row says in which months after the first they bought (``months_mask``, counted in the
    shop's zone); only customers whose row was counted in another zone, or who have orders dated after
    ``now``, are worked out from their orders. ``by_cohort``: what ``_by_cohort`` gave, when at hand."""
    cohort_months = month_starts(period)
    months = _report_months(period, now)
    per_customer = customers_cte(period, now)
    if by_cohort is None:
        by_cohort = _by_cohort(session, per_customer, period, now)
    counts: dict[tuple[int, int], int] = {}
    skip = 3 + 2 * len(REPEAT_WINDOWS)  # the columns before the count of customers read from orders
    for row in by_cohort:
        index = int(row[-1])
        for offset, customers in enumerate(row[skip + 1:-1]):
            counts[(index, index + offset)] = int(customers)
    if any(int(row[skip]) for row in by_cohort):
        only = ~_from_row(per_customer, period, now)
        for key, customers in _cohort_counts_from_orders(session, per_customer, only, months, period,
                                                         now).items():
            counts[key] = counts.get(key, 0) + customers
    now_month = len(month_starts(Period(period.start, now, period.timezone, period.tz))) - 1 \
        if now > period.start else -1
    cohorts = []
    for index, month in enumerate(cohort_months):
        size = counts.get((index, index), 0)
        retention: list[float | None] = []
        for offset in range(COHORT_MONTHS + 1):
            if index + offset > now_month:
                break
            retention.append(_ratio(counts.get((index, index + offset), 0), size))
        cohorts.append(Cohort(month=month, customers=size, retention=retention))
    return cohorts


def _cohort_counts_from_orders(session: Session, per_customer, only: ColumnElement[bool], months: list[date],
                               period: Period, now: datetime) -> dict[tuple[int, int], int]:
    """(cohort month, month) -> customers who bought in it, from the orders of the new customers
    (``per_customer``) matching ``only``."""
    chosen = select(per_customer).where(only).subquery("chosen")
    bought = purchases()
    first_month = _month_index(chosen.c.first_at, months, period.tz).label("cohort")
    order_month = _month_index(bought.c.at, months, period.tz).label("month")
    pairs = (select(first_month, order_month, bought.c.phone)
             .join(chosen, chosen.c.phone == bought.c.phone)
             .where(bought.c.at < now).subquery("pairs"))
    return {(int(c), int(m)): int(n) for c, m, n in session.exec(
        select(pairs.c.cohort, pairs.c.month, func.count(func.distinct(pairs.c.phone)))
        .group_by(pairs.c.cohort, pairs.c.month))}


def repeat_rate_90d(session: Session, period: Period, now: datetime) -> float | None:
    """The summary's ``repeat_purchase_rate_90d``: of the period's new customers whose first purchase is
    at least 90 days old, the share who bought again within 90 days."""
    matured = now - timedelta(days=90)
    if period.start >= matured:
        return None  # nobody who first bought in the period has had 90 days yet
    per_customer = customers_cte(period, now, first_before=matured)
    age = days_between(session, per_customer.c.first_at, literal(now, type_=UTCDateTime))
    gap = days_between(session, per_customer.c.first_at, per_customer.c.second_at)
    base, repeated = session.exec(select(
        func.count(), func.coalesce(func.sum(case((gap <= 90, 1), else_=0)), 0))
        .where(age >= 90)).one()
    return _ratio(int(repeated), int(base))


CSV_COLUMNS = ("section", "key", "customers", "value")


def csv_rows(report: RetentionReport) -> list[list[object]]:
    """The report flattened for a spreadsheet: one figure a row."""
    def value(number: float | None) -> object:
        return "" if number is None else number

    rows: list[list[object]] = [["new_customers", "", report.new_customers, report.new_customers]]
    rows += [["repeat_rate", f"{r.days}d", r.customers, value(r.rate)] for r in report.repeat]
    rows.append(["churn", f"{report.churn_days}d", report.churn_base, value(report.churn_rate)])
    rows.append(["clv_vnd", "", report.new_customers, value(report.clv_vnd)])
    rows.append(["avg_orders", "", report.new_customers, value(report.avg_orders)])
    for cohort in report.cohorts:
        rows += [["cohort", f"{cohort.month.isoformat()}+{offset}", cohort.customers, value(share)]
                 for offset, share in enumerate(cohort.retention)]
    rows += [["segment_repeat_90d", f"{s.dimension}:{s.segment}", s.customers, value(s.rate)]
             for s in report.segments]
    return rows

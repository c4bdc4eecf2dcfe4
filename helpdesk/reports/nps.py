"""The NPS report: the score of a period, its trend by shop-local month, by channel and by product,
and the customers' own words (verbatims). Like the after-delivery figures it is shop-wide: only the
channel filter applies (the channel the survey went out on). Computed in SQL on SQLite and PostgreSQL;
months are bucketed by their shop-local first moment, as the volume chart's buckets are."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field
from sqlalchemy import case, func, literal
from sqlmodel import Session, col, select

from helpdesk.nps.models import NpsResponse
from helpdesk.nps.service import DETRACTOR_MAX, PROMOTER_MIN, NpsFigures, category
from helpdesk.reports.period import Period, local_midnight
from helpdesk.reports.schemas import ReportPeriod
from helpdesk.shop.models import Order, Product

#: verbatims shown: the newest comments
VERBATIMS = 50


class NpsGroup(BaseModel):
    """NPS of one month, channel or product."""

    key: str = Field(description="the month (YYYY-MM-01), channel name or product SKU")
    label: str | None = Field(default=None, description="the product's name, for a product")
    nps: float | None
    promoters: int
    passives: int
    detractors: int
    answers: int


class NpsVerbatim(BaseModel):
    """One answer with the customer's why."""

    at: datetime
    score: int
    category: str
    comment: str
    channel: str
    product_sku: str | None
    order_code: str | None
    customer_id: int


class NpsReport(BaseModel):
    """NPS of a period with its trend, breakdowns and verbatims."""

    period: ReportPeriod
    channel: str | None
    nps: float | None
    promoters: int
    passives: int
    detractors: int
    answers: int
    surveys_sent: int = Field(description="surveys sent in the period (answered or not)")
    trend: list[NpsGroup] = Field(description="by shop-local month, every month of the period")
    by_channel: list[NpsGroup]
    by_product: list[NpsGroup]
    verbatims: list[NpsVerbatim] = Field(description=f"the {VERBATIMS} newest answers with a comment")


def month_starts(period: Period) -> list[date]:
    """The first day of every shop-local month the period touches."""
    first, last = period.first_day, period.last_day
    months = (last.year - first.year) * 12 + last.month - first.month + 1
    return [date(first.year + (first.month - 1 + n) // 12, (first.month - 1 + n) % 12 + 1, 1) for n in range(months)]


def month_bucket(column, period: Period, starts: list[date]):
    """SQL: the index in ``starts`` of the month ``column`` falls in (all moments inside the period)."""
    if len(starts) <= 1:
        return literal(0)
    return case(*[(column < local_midnight(day, period.tz), n) for n, day in enumerate(starts[1:])],
                else_=len(starts) - 1)


def _group(key: str, counts, label: str | None = None) -> NpsGroup:
    figures = NpsFigures(int(counts[0]), int(counts[1]), int(counts[2]))
    return NpsGroup(key=key, label=label, nps=figures.nps, promoters=figures.promoters,
                    passives=figures.passives, detractors=figures.detractors, answers=figures.answers)


def answered(period: Period, channel: str | None):
    """Conditions: answers given in the period (on the channel)."""
    conditions = [col(NpsResponse.score).is_not(None), NpsResponse.at >= period.start, NpsResponse.at < period.end]
    if channel is not None:
        conditions.append(NpsResponse.channel == channel)
    return conditions


def nps_report(session: Session, period: Period, channel: str | None) -> NpsReport:
    """Everything the reports page shows about NPS for the period."""
    where = answered(period, channel)
    sent = select(func.count()).where(NpsResponse.asked_at >= period.start, NpsResponse.asked_at < period.end)
    if channel is not None:
        sent = sent.where(NpsResponse.channel == channel)
    surveys_sent = int(session.exec(sent).one())
    starts = month_starts(period)
    # One pass over the period's answers, counted by (month, channel, product); the score, the trend
    # and both breakdowns are sums of these groups (a few thousand at most), not a pass each.
    bucket = month_bucket(NpsResponse.at, period, starts).label("bucket")
    rows = (select(bucket, NpsResponse.channel, NpsResponse.product_sku, NpsResponse.score)
            .where(*where).subquery())
    score = rows.c.score
    sums = (func.sum(case((score >= PROMOTER_MIN, 1), else_=0)),
            func.sum(case((score.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1), 1), else_=0)),
            func.sum(case((score <= DETRACTOR_MAX, 1), else_=0)))
    keys = (rows.c.bucket, rows.c.channel, rows.c.product_sku, Product.name)
    # ordered by SKU in the database: products are listed in its collation, as before
    groups = session.exec(select(*keys, *sums).select_from(rows)
                          .outerjoin(Product, Product.sku == rows.c.product_sku)
                          .group_by(*keys).order_by(rows.c.product_sku)).all()
    overall_counts = [0, 0, 0]
    by_month: dict[int, list[int]] = {}
    channels: dict[str, list[int]] = {}
    products: dict[str, tuple[str | None, list[int]]] = {}
    for month, channel_name, sku, name, *counts in groups:
        for totals in (overall_counts, by_month.setdefault(int(month), [0, 0, 0]),
                       channels.setdefault(channel_name, [0, 0, 0]),
                       *([products.setdefault(sku, (name, [0, 0, 0]))[1]] if sku is not None else [])):
            for n, count in enumerate(counts):
                totals[n] += int(count)
    overall = NpsFigures(*overall_counts)
    trend = [_group(day.isoformat(), by_month.get(n, (0, 0, 0))) for n, day in enumerate(starts)]
    by_channel = [_group(name, counts) for name, counts in sorted(channels.items())]  # channel names: ASCII
    by_product = [_group(sku, counts, label=name) for sku, (name, counts) in products.items()]
    verbatims = [
        NpsVerbatim(at=row.at, score=row.score, category=category(row.score), comment=row.comment,
                    channel=row.channel, product_sku=row.product_sku, order_code=code, customer_id=row.customer_id)
        for row, code in session.exec(
            select(NpsResponse, Order.code).outerjoin(Order, Order.id == NpsResponse.order_id)
            .where(*where, col(NpsResponse.comment).is_not(None), NpsResponse.comment != "")
            .order_by(col(NpsResponse.at).desc(), col(NpsResponse.id).desc()).limit(VERBATIMS)).all()]
    return NpsReport(period=period.public(), channel=channel, nps=overall.nps, promoters=overall.promoters,
                     passives=overall.passives, detractors=overall.detractors, answers=overall.answers,
                     surveys_sent=surveys_sent, trend=trend, by_channel=by_channel, by_product=by_product,
                     verbatims=verbatims)


NPS_COLUMNS = ("answered_at", "score", "category", "channel", "trigger", "product_sku", "order_code",
               "customer_id", "asked_at", "comment")


def nps_rows(session: Session, period: Period, channel: str | None) -> list[list[object]]:
    """One CSV row per answer of the period, oldest first (times shop-local ISO 8601)."""
    tz = period.tz
    rows = session.exec(select(NpsResponse, Order.code).outerjoin(Order, Order.id == NpsResponse.order_id)
                        .where(*answered(period, channel)).order_by(col(NpsResponse.at), col(NpsResponse.id)))
    return [[r.at.astimezone(tz).isoformat(timespec="seconds"), r.score, category(r.score), r.channel, r.trigger,
             r.product_sku or "", code or "", r.customer_id, r.asked_at.astimezone(tz).isoformat(timespec="seconds"),
             r.comment or ""] for r, code in rows.all()]

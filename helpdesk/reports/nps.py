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
from helpdesk.nps.service import NpsFigures, category, category_sums
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
    overall = NpsFigures(*(int(n) for n in session.exec(select(*category_sums()).where(*where)).one()))
    sent = select(func.count()).where(NpsResponse.asked_at >= period.start, NpsResponse.asked_at < period.end)
    if channel is not None:
        sent = sent.where(NpsResponse.channel == channel)
    surveys_sent = int(session.exec(sent).one())
    starts = month_starts(period)
    bucket = month_bucket(NpsResponse.at, period, starts).label("bucket")
    rows = select(bucket, NpsResponse.score).where(*where).subquery()
    def sums(score):
        return (func.sum(case((score >= 9, 1), else_=0)), func.sum(case((score.between(7, 8), 1), else_=0)),
                func.sum(case((score <= 6, 1), else_=0)))

    by_month = {int(n): (p, q, d) for n, p, q, d in session.exec(
        select(rows.c.bucket, *sums(rows.c.score)).group_by(rows.c.bucket))}
    trend = [_group(day.isoformat(), by_month.get(n, (0, 0, 0))) for n, day in enumerate(starts)]
    by_channel = [_group(name, (p, q, d)) for name, p, q, d in session.exec(
        select(NpsResponse.channel, *category_sums()).where(*where).group_by(NpsResponse.channel)
        .order_by(NpsResponse.channel))]
    products = session.exec(
        select(NpsResponse.product_sku, Product.name, *category_sums())
        .outerjoin(Product, Product.sku == NpsResponse.product_sku)
        .where(*where, col(NpsResponse.product_sku).is_not(None))
        .group_by(NpsResponse.product_sku, Product.name).order_by(NpsResponse.product_sku)).all()
    by_product = [_group(sku, (p, q, d), label=name) for sku, name, p, q, d in products]
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

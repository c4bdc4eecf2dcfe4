"""NPS surveys: asking (after a delivery, by the care sequence; after a resolved conversation, by a
listener), reading a typed or pressed 0–10 answer, the "why" that follows, and the score of a period.

NPS = % promoters (9–10) − % detractors (0–6), from −100 to 100; passives (7–8) count in the base only.
Nothing here talks HTTP or commits; callers own the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.flows.nps import score_in
from connectors.base import Button, OutboundQuickReplies, OutboundText
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.nps.models import NpsResponse
from helpdesk.shop.models import Order

#: a typed number answers a survey only this long after it was sent
NPS_ANSWER_WINDOW = timedelta(days=7)
#: a customer is not surveyed again this soon after the last survey (answered or not)
NPS_REST = timedelta(days=90)
PROMOTER_MIN, DETRACTOR_MAX = 9, 6
#: chats that show eleven one-tap answers (Telegram inline keyboard, Messenger's up to 13 quick
#: replies, web chat buttons); others (Zalo OA shows 5) get the plain-text question
BUTTON_CHANNELS = frozenset({"telegram", "facebook", "webchat"})
PAYLOAD_PREFIX = "nps:"

def parse_score(text: str) -> int | None:
    """The 0–10 score in a reply: "9", "9/10", "10 điểm", "chín" (the bot's reading of it)."""
    return score_in(text)


def category(score: int) -> str:
    """"promoter" (9–10), "passive" (7–8) or "detractor" (0–6)."""
    if score >= PROMOTER_MIN:
        return "promoter"
    return "detractor" if score <= DETRACTOR_MAX else "passive"


def nps_payload(response_id: int, score: int) -> str:
    """A button's payload: ``nps:<survey id>:<score>``."""
    return f"{PAYLOAD_PREFIX}{response_id}:{score}"


def parse_nps_payload(payload: str | None) -> tuple[int, int] | None:
    """``(survey id, score)`` from a button payload, or None if it is not one."""
    if not payload or not payload.startswith(PAYLOAD_PREFIX):
        return None
    survey, _, score = payload[len(PAYLOAD_PREFIX):].partition(":")
    if not survey.isdigit() or not score.isdigit() or not 0 <= int(score) <= 10:
        return None
    return int(survey), int(score)


def survey_message(response: NpsResponse, recipient_id: str, text: str, *, buttons: bool
                   ) -> OutboundText | OutboundQuickReplies:
    """The question with 0–10 buttons where the channel shows them, the plain text otherwise."""
    if buttons and response.channel in BUTTON_CHANNELS:
        options = tuple(Button(title=str(n), payload=nps_payload(response.id, n)) for n in range(11))
        return OutboundQuickReplies(recipient_id=recipient_id, text=text, options=options)
    return OutboundText(recipient_id=recipient_id, text=text)


def recently_surveyed(session: Session, customer: Customer, now: datetime) -> bool:
    """Whether the customer got a survey within NPS_REST (so another would be one too many)."""
    return session.exec(select(NpsResponse.id).where(
        NpsResponse.customer_id == customer.id, NpsResponse.asked_at > now - NPS_REST)).first() is not None


def ask(session: Session, customer: Customer, identity: ChannelIdentity, now: datetime, *,
        order: Order | None = None, conversation_id: int | None = None, trigger: str = "delivery") -> NpsResponse:
    """Record that the survey goes to the customer through ``identity`` (the answer fills it in)."""
    sku = None
    if order is not None and order.items:
        sku = str(order.items[0].get("sku") or "")[:64] or None
    response = NpsResponse(customer_id=primary_customer(session, customer).id, identity_id=identity.id,
                           order_id=order.id if order else None, conversation_id=conversation_id,
                           channel=identity.channel, product_sku=sku, trigger=trigger, asked_at=now)
    session.add(response)
    session.flush()
    return response


def _customers_surveys(session: Session, customer: Customer):
    """Surveys of the customer, by the customer record or any identity now merged into it."""
    identity_ids = select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id)
    return (NpsResponse.customer_id == customer.id) | col(NpsResponse.identity_id).in_(identity_ids)


def pending_survey(session: Session, customer: Customer, now: datetime) -> NpsResponse | None:
    """The newest unanswered survey sent to the customer within NPS_ANSWER_WINDOW."""
    customer = primary_customer(session, customer)
    return session.exec(
        select(NpsResponse).where(_customers_surveys(session, customer), col(NpsResponse.at).is_(None),
                                  NpsResponse.asked_at >= now - NPS_ANSWER_WINDOW)
        .order_by(col(NpsResponse.asked_at).desc(), col(NpsResponse.id).desc())).first()


def record_score(session: Session, customer: Customer, score: int, now: datetime,
                 response_id: int | None = None) -> NpsResponse | None:
    """Store the customer's 0–10 answer to survey ``response_id`` (None: the pending one); a later press
    changes it. None when there is no such survey of theirs."""
    if not 0 <= score <= 10:
        raise ValueError(f"an NPS score is 0 to 10, got {score}")
    customer = primary_customer(session, customer)
    if response_id is None:
        response = pending_survey(session, customer, now)
    else:
        response = session.exec(select(NpsResponse).where(
            NpsResponse.id == response_id, _customers_surveys(session, customer))).first()
    if response is None:
        return None
    response.score, response.at = score, now
    session.add(response)
    session.flush()
    return response


def add_comment(session: Session, customer: Customer, response_id: int, comment: str) -> bool:
    """Store the customer's "why" with their answer; whether the survey was theirs."""
    customer = primary_customer(session, customer)
    response = session.exec(select(NpsResponse).where(
        NpsResponse.id == response_id, _customers_surveys(session, customer))).first()
    if response is None:
        return False
    response.comment = comment.strip()[:2000]
    session.add(response)
    return True


@dataclass(frozen=True)
class NpsFigures:
    """Answers of a set split by category, and the score."""

    promoters: int = 0
    passives: int = 0
    detractors: int = 0

    @property
    def answers(self) -> int:
        return self.promoters + self.passives + self.detractors

    @property
    def nps(self) -> float | None:
        """% promoters − % detractors (−100…100, one decimal), None without answers."""
        if not self.answers:
            return None
        return round(100.0 * (self.promoters - self.detractors) / self.answers, 1)


def category_sums():
    """SQL sums of promoters, passives and detractors over NpsResponse rows (answered ones)."""
    from sqlalchemy import case

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    return (count(NpsResponse.score >= PROMOTER_MIN),
            count(NpsResponse.score.between(DETRACTOR_MAX + 1, PROMOTER_MIN - 1)),
            count(NpsResponse.score <= DETRACTOR_MAX))


def figures(session: Session, start: datetime, end: datetime, channel: str | None = None) -> NpsFigures:
    """The NPS of the answers given in ``[start, end)`` (on ``channel`` when given)."""
    query = select(*category_sums()).where(col(NpsResponse.score).is_not(None), NpsResponse.at >= start,
                                           NpsResponse.at < end)
    if channel is not None:
        query = query.where(NpsResponse.channel == channel)
    promoters, passives, detractors = session.exec(query).one()
    return NpsFigures(int(promoters), int(passives), int(detractors))

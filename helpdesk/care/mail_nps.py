"""The NPS survey answered from a care mail: one of the mail's eleven signed links (0-10) records the
answer through the NPS service the chat survey uses (``helpdesk/nps/service.py``), so reports count it
the same; the page it opens offers an optional "why". A detractor (0-6) opens the same follow-up a chat
detractor does: a conversation on the email identity in the human queue. Nothing here commits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from helpdesk.care.models import CareKind, CareMessage
from helpdesk.conversations import service as conversations
from helpdesk.conversations.models import MessageAuthor, Priority
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import primary_customer
from helpdesk.nps import service as nps
from helpdesk.nps.models import NpsResponse
from helpdesk.shop.models import Order

#: the follow-up's reason, as the chat survey's
DETRACTOR_REASON = "nps_detractor"


@dataclass(frozen=True)
class NpsAnswer:
    """What a click on an NPS link (or the "why" after it) recorded."""

    survey_id: int
    score: int | None
    order_code: str
    #: the conversation a new detractor answer put in the human queue, if any
    escalated: int | None = None


def _survey_of(session: Session, care: CareMessage, customer: Customer, now: datetime, *,
               create: bool) -> NpsResponse | None:
    """The survey the care mail asked (recorded when the mail went); asked now if it is missing."""
    survey = session.exec(select(NpsResponse).where(
        NpsResponse.identity_id == care.identity_id, NpsResponse.order_id == care.order_id)
        .order_by(col(NpsResponse.asked_at).desc(), col(NpsResponse.id).desc())).first()
    if survey is None and create:
        identity = session.get(ChannelIdentity, care.identity_id)
        survey = nps.ask(session, customer, identity, care.sent_at or now, order=session.get(Order, care.order_id))
    return survey


def _parts(session: Session, care_id: int) -> tuple[CareMessage, ChannelIdentity, Customer, Order] | None:
    care = session.get(CareMessage, care_id)
    if care is None or care.kind != CareKind.nps:
        return None
    identity = session.get(ChannelIdentity, care.identity_id)
    customer = primary_customer(session, session.get(Customer, identity.customer_id))
    return care, identity, customer, session.get(Order, care.order_id)


def record_email_nps(session: Session, care_id: int, score: int, now: datetime) -> NpsAnswer | None:
    """Store ``score`` as the answer to the survey care message ``care_id`` asked; None when that care
    message is gone or is not a survey."""
    found = _parts(session, care_id)
    if found is None:
        return None
    care, identity, customer, order = found
    survey = _survey_of(session, care, customer, now, create=True)
    before = survey.score
    nps.record_score(session, customer, score, now, survey.id)
    escalated = None
    newly_detractor = nps.category(score) == "detractor" and (before is None or nps.category(before) != "detractor")
    if newly_detractor:
        conversation = conversations.open_conversation(session, identity)
        conversations.add_message(session, conversation, direction="in", author=MessageAuthor.customer,
                                  text=f"NPS {score}/10 order:{order.code} (email)")
        conversations.escalate(session, conversation, DETRACTOR_REASON, Priority.normal)
        escalated = conversation.id
    return NpsAnswer(survey.id, score, order.code, escalated)


def record_email_nps_comment(session: Session, care_id: int, comment: str, now: datetime) -> NpsAnswer | None:
    """Store the "why" with the answer the link recorded (a detractor's also goes to the follow-up
    conversation, for the agent); None without an answered survey of that care message."""
    found = _parts(session, care_id)
    if found is None:
        return None
    care, identity, customer, order = found
    survey = _survey_of(session, care, customer, now, create=False)
    text = comment.strip()
    if survey is None or survey.score is None or not text:
        return None
    nps.add_comment(session, customer, survey.id, text)
    if nps.category(survey.score) == "detractor":
        conversation = conversations.open_conversation(session, identity)
        conversations.add_message(session, conversation, direction="in", author=MessageAuthor.customer,
                                  text=text[:2000])
    return NpsAnswer(survey.id, survey.score, order.code)

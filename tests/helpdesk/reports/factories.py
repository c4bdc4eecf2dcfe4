"""Test data for the reports: a factory that writes conversations, messages, tags, ratings and SLA
records with exact timestamps (so every figure can be worked out by hand), and accounts made through
the API."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from helpdesk.conversations.models import Conversation, ConversationTag, Message
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.ratings.models import Rating, RatingRequest
from helpdesk.sla.models import SLAEvent, SLAOutcome
from tests.conftest import CareDeskClient

HCM = ZoneInfo("Asia/Ho_Chi_Minh")
PASSWORD = "agent-pass-1"


def local(text: str) -> datetime:
    """A shop-time moment as aware UTC (2026-03-02 is a Monday)."""
    return datetime.fromisoformat(text).replace(tzinfo=HCM).astimezone(UTC)


async def make_agent(client: CareDeskClient, admin: dict[str, str], email: str, *, role: str = "agent",
                     teams: tuple[str, ...] = ()) -> tuple[int, dict[str, str]]:
    """An account made through the API: its id and bearer headers."""
    response = await client.post("/api/agents", headers=admin, json={
        "email": email, "name": email.split("@")[0].title(), "password": PASSWORD, "role": role,
        "teams": list(teams)})
    assert response.status_code == 201, response.text
    return response.json()["id"], await client.login(email, PASSWORD)


class Shop:
    """Writes what the reports read, straight into the database, with the timestamps given."""

    def __init__(self, engine):
        self.engine = engine
        self._senders = 0

    def _add(self, *rows: Any) -> list[Any]:
        with Session(self.engine, expire_on_commit=False) as session:
            for row in rows:
                session.add(row)
                session.flush()
            session.commit()
        return list(rows)

    def customer(self, channel: str = "telegram", name: str | None = None) -> tuple[int, int]:
        """A customer with one identity on the channel: (customer id, identity id)."""
        self._senders += 1
        with Session(self.engine) as session:
            customer = Customer(name=name or f"Khách {self._senders}")
            session.add(customer)
            session.flush()
            identity = ChannelIdentity(customer_id=customer.id, channel=channel,
                                       external_id=f"{channel}-{self._senders}")
            session.add(identity)
            session.commit()
            return customer.id, identity.id

    def conversation(self, created: str, *, channel: str = "telegram",
                     customer: tuple[int, int] | None = None, **fields: Any) -> int:
        """A conversation started at a shop-local time; other timestamps as shop-local text too."""
        customer_id, identity_id = customer or self.customer(channel)
        for name in ("escalated_at", "first_response_at", "resolved_at", "last_message_at"):
            if isinstance(fields.get(name), str):
                fields[name] = local(fields[name])
        fields.setdefault("last_message_at", local(created))
        [conversation] = self._add(Conversation(
            customer_id=customer_id, identity_id=identity_id, channel=channel, created_at=local(created),
            updated_at=local(created), **fields))
        return conversation.id

    def customer_of(self, conversation_id: int) -> tuple[int, int]:
        """(customer id, identity id) of a conversation."""
        with Session(self.engine) as session:
            conversation = session.get(Conversation, conversation_id)
            return conversation.customer_id, conversation.identity_id

    def message(self, conversation_id: int, at: str, text: str, *, author: str = "customer",
                intent: str | None = None, payload: str | None = None) -> None:
        """A message, with the intent the NLU read in it."""
        with Session(self.engine) as session:
            channel = session.get(Conversation, conversation_id).channel
        nlu = None
        if intent:
            nlu = {"text": text, "intent": {"name": intent, "confidence": 0.93}, "entities": []}
        self._add(Message(conversation_id=conversation_id, direction="in" if author == "customer" else "out",
                          author=author, channel=channel, text=text, nlu=nlu, payload=payload,
                          created_at=local(at)))

    def tag(self, conversation_id: int, *tags: str) -> None:
        """Label a conversation."""
        self._add(*[ConversationTag(conversation_id=conversation_id, tag=tag) for tag in tags])

    def csat(self, conversation_id: int, stars: int, at: str) -> None:
        """The customer's rating of a conversation."""
        customer_id, _ = self.customer_of(conversation_id)
        self._add(Rating(kind="csat", score=stars, customer_id=customer_id, conversation_id=conversation_id,
                         created_at=local(at)))

    def delivery_request(self, identity: tuple[int, int], code: str, sent: str, *, stars: int | None = None,
                         answered: str | None = None) -> None:
        """An after-delivery rating request, answered with ``stars`` when given."""
        customer_id, identity_id = identity
        rating_id = None
        if stars is not None:
            [rating] = self._add(Rating(kind="delivery", score=stars, customer_id=customer_id,
                                        created_at=local(answered or sent)))
            rating_id = rating.id
        self._add(RatingRequest(customer_id=customer_id, identity_id=identity_id, subject=f"order:{code}",
                                sent_at=local(sent), answered_at=local(answered) if answered else None,
                                rating_id=rating_id))

    def breach_event(self, conversation_id: int, at: str) -> None:
        """A breach recorded by the periodic SLA check."""
        self._add(SLAEvent(conversation_id=conversation_id, target="first_response", kind="breach",
                           created_at=local(at)))

    def missed_outcome(self, conversation_id: int, escalated: str) -> None:
        """An escalation whose first response came too late."""
        self._add(SLAOutcome(conversation_id=conversation_id, priority="normal",
                             escalated_at=local(escalated), first_response_met=False,
                             updated_at=local(escalated)))


# -- the known week -----------------------------------------------------------------------------------------
# The shop keeps the default hours (Monday to Saturday, 08:00–21:00, Asia/Ho_Chi_Minh); the week is
# Monday 2026-03-02 to Sunday 2026-03-08.

WEEK = {"from": "2026-03-02", "to": "2026-03-08"}


@dataclass
class Week:
    """The ids and accounts of the known week."""

    lan: int
    minh: int
    admin: dict[str, str]
    headers: dict[str, dict[str, str]]
    ids: dict[str, int]


async def build_week(client: CareDeskClient, shop: Shop) -> Week:
    """Seven conversations in the week, plus the noise that must not count."""
    admin = await client.login()
    lan, lan_headers = await make_agent(client, admin, "lan@test.local", teams=("care",))
    minh, minh_headers = await make_agent(client, admin, "minh@test.local", teams=("technical",))
    _, care_lead = await make_agent(client, admin, "care.lead@test.local", role="supervisor",
                                    teams=("care",))
    _, tech_lead = await make_agent(client, admin, "tech.lead@test.local", role="supervisor",
                                    teams=("technical",))

    def seed() -> dict[str, int]:
        """The rows, written in a thread: synchronous database work on this loop would hold up the app
        running on it (and the loop-stall check fails the test for it)."""
        ids: dict[str, int] = {}

        # Escalated at 07:00, before opening: the first answer at 08:10 took 10 business minutes.
        ids["c1"] = c1 = shop.conversation(
            "2026-03-02 07:00", team="care", assignee_id=lan, state="resolved",
            escalated_at="2026-03-02 07:00", escalation_reason="report_defect",
            first_response_at="2026-03-02 08:10", resolved_at="2026-03-02 09:00")
        shop.message(c1, "2026-03-02 07:00", "Nồi cơm điện bị lỗi, không nấu được", intent="report_defect")
        shop.csat(c1, 5, "2026-03-02 09:05")
        # Resolved the next morning: 11 business hours on Monday and 1 on Tuesday; breached.
        ids["c2"] = c2 = shop.conversation(
            "2026-03-02 10:00", team="care", assignee_id=lan, state="resolved",
            escalated_at="2026-03-02 10:00",
            escalation_reason="complain_delivery", first_response_at="2026-03-02 10:20",
            resolved_at="2026-03-03 09:00", sla_status="breached")
        shop.message(c2, "2026-03-02 10:00", "Giao hàng trễ 5 ngày rồi", intent="complain_delivery")
        shop.tag(c2, "giao-tre")
        shop.csat(c2, 4, "2026-03-03 09:10")
        # Escalated ten minutes before closing: 10 minutes that evening, 5 the next morning.
        ids["c3"] = c3 = shop.conversation(
            "2026-03-04 20:50", channel="zalo_oa", team="technical", assignee_id=minh, state="resolved",
            escalated_at="2026-03-04 20:50", escalation_reason="report_defect",
            first_response_at="2026-03-05 08:05", resolved_at="2026-03-05 10:00")
        shop.message(c3, "2026-03-04 20:50", "Máy xay không chạy", intent="ask_warranty")
        shop.tag(c3, "giao-tre")
        shop.breach_event(c3, "2026-03-05 08:00")
        shop.csat(c3, 2, "2026-03-05 10:30")
        # The bot alone: one idle, one closed without anyone taking it.
        ids["c4"] = c4 = shop.conversation("2026-03-03 12:00", last_message_at="2026-03-03 12:05")
        shop.message(c4, "2026-03-03 12:00", "Cửa hàng mở cửa mấy giờ?", intent="ask_opening_hours")
        shop.tag(c4, "zalo")
        ids["c5"] = c5 = shop.conversation("2026-03-06 08:30", state="resolved",
                                           resolved_at="2026-03-06 09:00")
        shop.message(c5, "2026-03-06 08:30", "Phí ship bao nhiêu?", intent="ask_shipping_fee")
        shop.tag(c5, "vip")
        # Waiting on Saturday morning, never answered; its outcome missed the first response.
        ids["c6"] = c6 = shop.conversation(
            "2026-03-07 09:00", channel="webchat", team="care", state="waiting_for_agent",
            escalated_at="2026-03-07 09:00", escalation_reason="complain_service")
        shop.message(c6, "2026-03-07 09:00", "Nhân viên trả lời rất thô lỗ", intent="complain_service")
        shop.missed_outcome(c6, "2026-03-07 09:00")
        # Not a complaint (the bot's own reading of its message does not count).
        ids["c9"] = c9 = shop.conversation(
            "2026-03-06 14:00", team="technical", assignee_id=minh, state="resolved",
            escalated_at="2026-03-06 14:00", escalation_reason="customer_request",
            first_response_at="2026-03-06 14:01", resolved_at="2026-03-06 15:00")
        shop.message(c9, "2026-03-06 14:00", "Cho mình gặp nhân viên", intent="request_human")
        shop.message(c9, "2026-03-06 14:00", "Dạ em chuyển anh/chị cho nhân viên", author="bot",
                     intent="complain_service")
        shop.csat(c9, 1, "2026-03-06 15:05")

        # Noise: outside the week, the care sequence's own conversation, answers to rating requests.
        before = shop.conversation("2026-03-01 10:00", escalated_at="2026-03-01 10:00", state="resolved",
                                   escalation_reason="report_defect", resolved_at="2026-03-01 11:00")
        shop.csat(before, 5, "2026-03-01 11:00")
        # c1's customer is back within the week after; c3's only ten days on.
        ids["c7"] = c7 = shop.conversation("2026-03-09 08:00", customer=shop.customer_of(c1))
        shop.message(c7, "2026-03-09 08:00", "Nồi lại hỏng rồi", intent="report_defect")
        c8 = shop.conversation("2026-03-15 09:00", channel="zalo_oa", customer=shop.customer_of(c3))
        shop.message(c8, "2026-03-15 09:00", "Cho hỏi bảo hành", intent="ask_warranty")
        care = shop.conversation("2026-03-03 09:00")
        shop.message(care, "2026-03-03 09:00", "Cảm ơn anh/chị đã mua hàng!", author="bot")
        answer = shop.conversation("2026-03-03 09:30", customer=shop.customer_of(c2))
        shop.message(answer, "2026-03-03 09:30", "⭐⭐⭐⭐", payload=f"rating:conversation:{c2}:4")
        typed = shop.conversation("2026-03-06 15:10", customer=shop.customer_of(c9))
        shop.message(typed, "2026-03-06 15:10", " 1 sao ")

        # After delivery: three requests in the week (two answered), one older request answered in it.
        telegram_buyer, zalo_buyer = shop.customer("telegram"), shop.customer("zalo_oa")
        shop.delivery_request(telegram_buyer, "DH001", "2026-03-03 10:00", stars=5,
                              answered="2026-03-03 12:00")
        shop.delivery_request(zalo_buyer, "DH002", "2026-03-04 10:00", stars=3, answered="2026-03-05 09:00")
        shop.delivery_request(telegram_buyer, "DH003", "2026-03-05 10:00")
        shop.delivery_request(zalo_buyer, "DH000", "2026-02-20 10:00", stars=1, answered="2026-03-04 18:00")
        return ids

    ids = await asyncio.to_thread(seed)
    return Week(lan=lan, minh=minh, admin=admin, ids=ids, headers={
        "lan": lan_headers, "minh": minh_headers, "care_lead": care_lead, "tech_lead": tech_lead})

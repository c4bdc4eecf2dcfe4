"""The bot's view of the helpdesk's customer records (bot.ports.CustomerDirectory) on the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.ports import QueuePlace
from bot.responses import Responses
from helpdesk.care import service
from helpdesk.care.service import CarePolicy
from helpdesk.core.clock import Clock
from helpdesk.core.config import Settings
from helpdesk.conversations import queue
from helpdesk.conversations.models import Conversation
from helpdesk.core.errors import NotFound
from helpdesk.customers import service as customers
from helpdesk.customers.models import Customer
from helpdesk.nps import service as nps
from helpdesk.ratings import service as ratings
from helpdesk.sla import service as sla

T = TypeVar("T")


class DatabaseCustomerDirectory:
    """Implements bot.ports.CustomerDirectory; every call is one transaction in a worker thread."""

    def __init__(self, engine: Engine, settings: Settings, responses: Responses, clock: Clock):
        self._engine = engine
        self._settings = settings
        self._responses = responses
        #: read at each call: tests set the clock after the directory is built
        self._clock = clock

    def _policy(self) -> CarePolicy:
        return CarePolicy.from_settings(self._settings)

    async def _in_transaction(self, customer_id: int, work: Callable[[Session, Customer], T]) -> T:
        def run() -> T:
            with Session(self._engine, expire_on_commit=False) as session:
                customer = session.get(Customer, customer_id)
                if customer is None:
                    raise NotFound(f"customer {customer_id} not found")
                result = work(session, customers.primary_customer(session, customer))
                session.commit()
                return result

        return await to_thread.run_sync(run)

    async def link_verified_phone(self, customer_id: int, phone: str) -> None:
        """Record the verified phone (merging with whoever verified it elsewhere) and reach the
        customer with the care of that phone's recent orders."""
        def link(session: Session, customer: Customer) -> None:
            customer = customers.link_verified_phone(session, customer, phone)
            session.flush()
            service.attach_pending_care(session, customer, self._policy(), self._clock.now())

        await self._in_transaction(customer_id, link)

    async def record_rating(
        self, customer_id: int, subject: str, stars: int, comment: str | None = None,
    ) -> str:
        """Store the rating ("delivery" for ``order:<code>``, "csat" for ``conversation:<id>``)."""
        now = self._clock.now()

        def record(session: Session, customer: Customer) -> str:
            return ratings.record_rating(session, customer, subject, stars, now, comment)

        return await self._in_transaction(customer_id, record)

    async def add_rating_comment(self, customer_id: int, subject: str, comment: str) -> None:
        """Attach what went wrong to the customer's rating of ``subject``."""
        def attach(session: Session, customer: Customer) -> bool:
            return ratings.add_rating_comment(session, customer, subject, comment)

        await self._in_transaction(customer_id, attach)

    async def pending_rating_subject(self, customer_id: int) -> str | None:
        """The newest rating the shop asked this customer for (within a week) and did not get."""
        now = self._clock.now()
        return await self._in_transaction(
            customer_id, lambda session, customer: ratings.pending_rating_subject(session, customer, now))

    async def record_nps(self, customer_id: int, score: int, survey_id: int | None = None) -> int | None:
        """Store a 0–10 NPS answer; the survey's id (None: no such survey of the customer's)."""
        now = self._clock.now()

        def record(session: Session, customer: Customer) -> int | None:
            response = nps.record_score(session, customer, score, now, survey_id)
            return response.id if response is not None else None

        return await self._in_transaction(customer_id, record)

    async def pending_nps(self, customer_id: int) -> int | None:
        """The NPS survey sent to the customer within a week and not answered, if any."""
        now = self._clock.now()

        def pending(session: Session, customer: Customer) -> int | None:
            response = nps.pending_survey(session, customer, now)
            return response.id if response is not None else None

        return await self._in_transaction(customer_id, pending)

    async def add_nps_comment(self, customer_id: int, survey_id: int, comment: str) -> None:
        """Store why the customer gave their score."""
        await self._in_transaction(
            customer_id, lambda session, customer: nps.add_comment(session, customer, survey_id, comment))

    async def set_opt_out(self, customer_id: int, opted_out: bool) -> None:
        """Stop proactive care (cancelling what is scheduled), or resume it for future orders."""
        now = self._clock.now()
        def set_flag(session: Session, customer: Customer) -> Customer:
            return service.set_care_opt_out(session, customer, opted_out, now)

        await self._in_transaction(customer_id, set_flag)

    async def handoff_eta(self, priority: str, locale: str) -> str:
        """When a person will answer: the first-response target of the priority's SLA policy in
        business hours, the next opening outside them (the configured week and holidays)."""
        now = self._clock.now()

        def eta() -> str:
            with Session(self._engine) as session:
                config = sla.load_config(session, self._policy().timezone)
                session.commit()  # the default policies and week, if this was their first use
            return service.handoff_eta(self._responses, config.targets(priority).first_response_minutes,
                                       locale, now, config.clock)

        return await to_thread.run_sync(eta)

    async def queue_place(self, conversation_id: int, locale: str) -> QueuePlace | None:
        """Where a waiting conversation stands in its queue, and when a person will answer: from how
        long people took to answer lately (business time), or the SLA policy's first-response target
        when too few answered lately to say; outside business hours, when the shop opens."""
        now = self._clock.now()

        def place() -> QueuePlace | None:
            with Session(self._engine) as session:
                conversation = session.get(Conversation, conversation_id)
                position = queue.queue_position(session, conversation) if conversation is not None else None
                if position is None:
                    return None
                priority = conversation.priority
                config = sla.load_config(session, self._policy().timezone)
                minutes = queue.recent_first_response_minutes(session, config.clock, now)
                session.commit()  # the default policies and week, if this was their first use
            if minutes is None:
                minutes = config.targets(priority).first_response_minutes
            return QueuePlace(position, service.handoff_eta(self._responses, minutes, locale, now, config.clock))

        return await to_thread.run_sync(place)

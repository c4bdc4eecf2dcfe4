"""The bot's view of the helpdesk's customer records (bot.ports.CustomerDirectory) on the database."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from anyio import to_thread
from sqlmodel import Session

from helpdesk.care import service
from helpdesk.care.tasks import care_policy
from helpdesk.core.errors import NotFound
from helpdesk.customers import service as customers
from helpdesk.customers.models import Customer
from helpdesk.ratings import service as ratings
from helpdesk.sla import service as sla

if TYPE_CHECKING:
    from helpdesk.runtime import Runtime

T = TypeVar("T")


class DatabaseCustomerDirectory:
    """Implements bot.ports.CustomerDirectory; every call is one transaction in a worker thread."""

    def __init__(self, runtime: Runtime):
        # The runtime, not its parts: tests swap its clock, and the settings give the care policy.
        self._runtime = runtime

    async def _in_transaction(self, customer_id: int, work: Callable[[Session, Customer], T]) -> T:
        def run() -> T:
            with Session(self._runtime.engine, expire_on_commit=False) as session:
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
        runtime = self._runtime

        def link(session: Session, customer: Customer) -> None:
            customer = customers.link_verified_phone(session, customer, phone)
            session.flush()
            service.attach_pending_care(session, customer, care_policy(runtime), runtime.clock())

        await self._in_transaction(customer_id, link)

    async def record_rating(
        self, customer_id: int, subject: str, stars: int, comment: str | None = None,
    ) -> str:
        """Store the rating ("delivery" for ``order:<code>``, "csat" for ``conversation:<id>``)."""
        now = self._runtime.clock()

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
        now = self._runtime.clock()
        return await self._in_transaction(
            customer_id, lambda session, customer: ratings.pending_rating_subject(session, customer, now))

    async def set_opt_out(self, customer_id: int, opted_out: bool) -> None:
        """Stop proactive care (cancelling what is scheduled), or resume it for future orders."""
        now = self._runtime.clock()
        def set_flag(session: Session, customer: Customer) -> Customer:
            return service.set_care_opt_out(session, customer, opted_out, now)

        await self._in_transaction(customer_id, set_flag)

    async def handoff_eta(self, priority: str, locale: str) -> str:
        """When a person will answer: the first-response target of the priority's SLA policy in
        business hours, the next opening outside them (the configured week and holidays)."""
        runtime = self._runtime
        now = runtime.clock()

        def eta() -> str:
            with Session(runtime.engine) as session:
                config = sla.load_config(session, care_policy(runtime).timezone)
                session.commit()  # the default policies and week, if this was their first use
            return service.handoff_eta(runtime.bot.responses, config.targets(priority).first_response_minutes,
                                       locale, now, config.clock)

        return await to_thread.run_sync(eta)

"""What the bot needs from the shop and the helpdesk, as small interfaces the helpdesk implements.

Flows call these and never touch a database, so they can be tested with any implementation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class OrderView:
    """An order as the bot may talk about it (after the ownership check)."""

    code: str
    phone: str
    status: str
    items: tuple[str, ...] = ()
    total_vnd: int = 0
    delivered_at: datetime | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class WarrantyView:
    """A product unit's warranty."""

    serial: str
    product_name: str
    starts_at: datetime
    ends_at: datetime
    order_code: str | None = None
    phone: str | None = None


@dataclass(frozen=True)
class ProductView:
    """A product of the shop's catalog, as the bot may talk about it (price and stock when known)."""

    sku: str
    name: str
    name_en: str | None = None
    category: str | None = None
    warranty_months: int = 12
    price_vnd: int | None = None
    stock: int | None = None

    def display_name(self, locale: str) -> str:
        """The product's name in the customer's language (the Vietnamese name when no other)."""
        return self.name_en if locale == "en" and self.name_en else self.name


@dataclass(frozen=True)
class CustomerView:
    """Who the bot is talking to."""

    id: int
    name: str | None = None
    verified_phone: str | None = None
    locale: str | None = None


@dataclass(frozen=True)
class QueuePlace:
    """Where a customer waiting for a person stands: 1 is next, and when to expect an answer (in
    words for the customer)."""

    position: int
    eta: str


class ShopDirectory(Protocol):
    """Looking up orders and warranties."""

    async def order_by_code(self, code: str) -> OrderView | None:
        """The order with this code (any case, with or without '#'), if it exists."""
        ...

    async def warranty_by_serial(self, serial: str) -> WarrantyView | None:
        """The warranty of the unit with this serial, if known."""
        ...

    async def warranties_for_order(self, code: str) -> list[WarrantyView]:
        """Warranties of the units in an order."""
        ...

    async def orders_for_phone(self, phone: str) -> list[OrderView]:
        """Orders placed with this phone, newest first."""
        ...

    async def products(self) -> list[ProductView]:
        """Every product of the catalog (what the shop sells)."""
        ...


class CustomerDirectory(Protocol):
    """What the helpdesk knows and records about the customer."""

    async def link_verified_phone(self, customer_id: int, phone: str) -> None:
        """Remember that the customer proved this phone is theirs (it matched their order)."""
        ...

    async def record_rating(self, customer_id: int, subject: str, stars: int, comment: str | None = None) -> str:
        """Store a 1–5 rating for ``subject`` (``order:<code>`` or ``conversation:<id>``); returns its kind."""
        ...

    async def add_rating_comment(self, customer_id: int, subject: str, comment: str) -> None:
        """Attach what went wrong to the customer's latest rating of ``subject``."""
        ...

    async def pending_rating_subject(self, customer_id: int) -> str | None:
        """The subject of a rating the shop asked this customer for and has not received, if any."""
        ...

    async def record_nps(self, customer_id: int, score: int, survey_id: int | None = None) -> int | None:
        """Store a 0–10 answer to the NPS survey ``survey_id`` (None: the one pending); the survey's id,
        or None when the customer has no such survey."""
        ...

    async def pending_nps(self, customer_id: int) -> int | None:
        """The id of an NPS survey sent to this customer lately and not answered, if any."""
        ...

    async def add_nps_comment(self, customer_id: int, survey_id: int, comment: str) -> None:
        """Store why the customer gave their NPS score."""
        ...

    async def set_opt_out(self, customer_id: int, opted_out: bool) -> None:
        """Stop (or resume) proactive care messages to this customer."""
        ...

    async def handoff_eta(self, priority: str, locale: str) -> str:
        """When a person will answer, in words for the customer."""
        ...

    async def queue_place(self, conversation_id: int, locale: str) -> QueuePlace | None:
        """Where the conversation stands in the queue for a person, or None when nobody waits in it
        any more (a person has answered, or it went back to the bot)."""
        ...


@dataclass
class NullShop:
    """A shop with no orders (for engines built without a database), or with the ones it is given."""

    orders: dict[str, OrderView] = field(default_factory=dict)
    catalog: list[ProductView] = field(default_factory=list)

    async def order_by_code(self, code: str) -> OrderView | None:
        return self.orders.get(code.upper().lstrip("#"))

    async def warranty_by_serial(self, serial: str) -> WarrantyView | None:
        return None

    async def warranties_for_order(self, code: str) -> list[WarrantyView]:
        return []

    async def orders_for_phone(self, phone: str) -> list[OrderView]:
        return [order for order in self.orders.values() if order.phone == phone]

    async def products(self) -> list[ProductView]:
        return list(self.catalog)

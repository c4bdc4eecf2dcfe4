"""Care test fixtures: a controllable clock, an app with care wired in, and factories for orders,
customers and channel identities."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import Session, col, select

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, CareDeskClient, start_client

SHOP_TZ = ZoneInfo("Asia/Ho_Chi_Minh")
API_KEY = "order-system-key-0123456789"


class FakeClock:
    """A clock tests move by hand; install it as ``wiring.clock``."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set_local(self, text: str) -> datetime:
        """Jump to a shop-time moment, e.g. ``"2026-03-02 16:00"``."""
        self.now = datetime.fromisoformat(text).replace(tzinfo=SHOP_TZ).astimezone(UTC)
        return self.now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta's worth (``hours=24``)."""
        self.now += timedelta(**delta)
        return self.now


def local(text: str) -> datetime:
    """A shop-time moment as aware UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=SHOP_TZ).astimezone(UTC)


@pytest.fixture
def clock() -> FakeClock:
    """Monday 2 March 2026, 10:00 in Ho Chi Minh City."""
    return FakeClock(local("2026-03-02 10:00"))


@pytest.fixture
def care_settings(sqlite_url: str, tmp_path: Path) -> Callable[..., object]:
    """Settings for a care test app: its own database, no NLU model (care needs none), an API key,
    and a care check interval long enough that only the test runs the care task."""
    from helpdesk.core.config import Settings

    def make(**overrides: object) -> Settings:
        care = {"check_interval_s": 3600, **overrides.pop("care", {})}
        values: dict[str, object] = {
            "environment": "test",
            "database_url": sqlite_url,
            "nlu": {"models_dir": tmp_path / "no-models"},
            "admin": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            "integration": {"api_key": API_KEY},
            "care": care,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


async def started(settings, clock: FakeClock) -> AsyncIterator[CareDeskClient]:
    """A running app whose wiring uses ``clock``, with the care routes and directory wired the way
    the lead wires them in app.py and wiring.py."""
    async for client in start_client(settings):
        wire_care(client.app, client.wiring)
        client.wiring.clock.use(clock)
        yield client


def wire_care(app, wiring) -> None:
    """Until app.py and wiring.py include them: the care router and the customer directory."""
    from helpdesk.shop.api import router

    if not any(getattr(route, "path", "").startswith("/api/orders") for route in app.router.routes):
        app.include_router(router)
    if wiring.bot.services.customers is None:
        wiring.bot.services.customers = wiring.customers


@pytest.fixture
async def care_client(care_settings, clock) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite with the cli channel on and the fake clock."""
    async for client in started(care_settings(), clock):
        yield client


# -- factories ---------------------------------------------------------------------------------------


def add_rice_cooker(session: Session) -> None:
    """The demo shop's rice cooker, so orders have a product with a usage FAQ."""
    from helpdesk.shop.models import Product

    if session.exec(select(Product).where(Product.sku == "RC-18")).first() is None:
        session.add(Product(sku="RC-18", name="Nồi cơm điện Bếp Việt 1.8L",
                            name_en="Bếp Việt 1.8L electric rice cooker", category="kitchen",
                            warranty_months=12))
        session.flush()


def make_order(engine, code: str = "DH200001", phone: str = "0901234567", *, status: str = "in_transit",
               serial: str | None = None, customer_name: str | None = "Nguyễn Văn An") -> int:
    """An order for one rice cooker; returns its id."""
    from helpdesk.shop.models import Order

    with Session(engine) as session:
        add_rice_cooker(session)
        line = {"sku": "RC-18", "name": "Nồi cơm điện Bếp Việt 1.8L", "qty": 1}
        if serial:
            line["serial"] = serial
        order = Order(code=code, phone=phone, status=status, customer_name=customer_name, items=[line],
                      total_vnd=1290000)
        session.add(order)
        session.commit()
        return order.id


def make_customer(engine, channel: str = "cli", external_id: str = "cli-an", *,
                  phone: str | None = "0901234567", locale: str = "vi",
                  last_inbound_at: datetime | None = None) -> tuple[int, int]:
    """A customer who verified ``phone`` (if given) and writes on one channel; (customer id, identity id)."""
    from helpdesk.customers.models import ChannelIdentity, Customer

    with Session(engine) as session:
        customer = Customer(name="An", phone=phone, phone_verified=phone is not None, locale=locale)
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, external_id=external_id,
                                   last_inbound_at=last_inbound_at)
        session.add(identity)
        session.commit()
        return customer.id, identity.id


def bot_texts(engine, channel: str, external_id: str) -> list[str]:
    """What the shop sent to one chat, oldest first."""
    from helpdesk.conversations.models import Conversation, Message
    from helpdesk.customers.models import ChannelIdentity

    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(
            ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)).one()
        conversation_ids = select(Conversation.id).where(Conversation.identity_id == identity.id)
        rows = session.exec(select(Message).where(col(Message.conversation_id).in_(conversation_ids),
                                                  Message.direction == "out").order_by(col(Message.id))).all()
        return [row.text for row in rows]


def care_rows(engine, code: str) -> list[dict]:
    """The order's care messages as plain dicts, by due time."""
    from helpdesk.care.service import care_messages_for_order
    from helpdesk.shop.service import get_order

    with Session(engine) as session:
        order = get_order(session, code)
        return [{"kind": care.kind, "status": care.status, "due_at": care.due_at, "reason": care.reason,
                 "channel": identity.channel, "recipient": identity.external_id}
                for care, identity in care_messages_for_order(session, order)]


def status_of(engine, code: str) -> dict[str, str]:
    """kind -> status of an order's care messages (one identity)."""
    return {row["kind"]: row["status"] for row in care_rows(engine, code)}

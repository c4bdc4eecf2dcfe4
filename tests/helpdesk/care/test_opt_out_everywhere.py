"""Opting out on any channel stops every care kind on every channel: an email's one-click unsubscribe, a
"dừng" typed in a chat and a ZNS refusal from Zalo (-139) each cancel the thank-you, check-in, NPS survey,
maintenance reminder and warranty notice planned on the chat, on ZNS and by email, and nothing goes out
afterwards. Real SMTP (aiosmtpd), the fake ZNS server, """

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlmodel import Session, select

from helpdesk.care.models import CareMessage
from helpdesk.customers.models import Customer
from tests.helpdesk.care.conftest import bot_texts
from tests.helpdesk.care.test_kinds_by_channel import (  # noqa: F401  (fixtures)
    client, delivered_order, due_now, identity_on, rows, run, smtp, zns,
)

LATER_KINDS = ("check_in", "nps", "mnt:0:0:1", "wexp:{warranty}")


def plan_everywhere(engine, clock) -> tuple[int, dict[str, int]]:
    """A delivered order whose later steps are planned on the chat, ZNS and email alike, due tomorrow."""
    order_id, warranty_id = delivered_order(engine, clock.now)
    identities = {channel: identity_on(engine, channel, order_id) for channel in ("chat", "zns", "email")}
    for identity_id in identities.values():
        for kind in LATER_KINDS:
            due_now(engine, order_id, identity_id, kind.format(warranty=warranty_id), clock.now + timedelta(days=1))
    return order_id, identities


async def opt_out_by_email(client, clock, smtp, zns, order_id, identities) -> None:
    due_now(client.wiring.engine, order_id, identities["email"], "thank_you", clock.now)
    await run(client)
    header = smtp.received[-1].message["List-Unsubscribe"]
    url = next(part.strip("<> ") for part in header.split(",") if "https://" in part)
    split = urlsplit(url)
    done = await client.post(split.path, data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200


async def opt_out_in_the_chat(client, clock, smtp, zns, order_id, identities) -> None:
    # what bot/flows/optout.py does on "dừng" (the care app runs without an NLU model to route the turn)
    with Session(client.wiring.engine) as session:
        customer_id = session.exec(select(Customer.id).where(Customer.phone_verified)).one()
    await client.wiring.customers.set_opt_out(customer_id, True)


async def opt_out_on_zalo(client, clock, smtp, zns, order_id, identities) -> None:
    zns.fail_next_zns(-139, message="User refused to receive ZNS messages from this OA")
    due_now(client.wiring.engine, order_id, identities["zns"], "thank_you", clock.now)
    await run(client)


@pytest.mark.parametrize("opt_out", [opt_out_by_email, opt_out_in_the_chat, opt_out_on_zalo])
async def test_an_opt_out_on_any_channel_stops_every_care_kind_on_every_channel(client, clock, smtp, zns, opt_out):
    engine = client.wiring.engine
    order_id, identities = plan_everywhere(engine, clock)

    await opt_out(client, clock, smtp, zns, order_id, identities)
    mails, zns_sends = len(smtp.received), len(zns.zns_sent())
    chat_texts = len(bot_texts(engine, "cli", "cli-an"))
    clock.advance(days=2)
    await run(client)

    later = [cell for cell in rows(engine, order_id) if cell[1] != "thank_you"]
    assert len(later) == 12
    assert {(status, reason) for _channel, _kind, status, reason in later} == {
        ("cancelled", "the customer opted out")}
    assert len(smtp.received) == mails and len(zns.zns_sent()) == zns_sends
    assert len(bot_texts(engine, "cli", "cli-an")) == chat_texts
    with Session(engine) as session:
        assert any(customer.care_opted_out for customer in session.exec(select(Customer)).all())
        if opt_out is opt_out_on_zalo:  # the refusal itself is recorded as the reason nothing falls back
            refused = session.exec(select(CareMessage).where(CareMessage.kind == "thank_you")).one()
            assert refused.status == "cancelled" and "taken as an opt-out" in refused.reason

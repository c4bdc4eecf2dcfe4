"""A small shop whose customers each match a known set of segment conditions, every fact dated from
``NOW`` so that each expected membership can be worked out by hand (see the table in ``build``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from helpdesk.conversations.models import Conversation, ConversationTag
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.nps.models import NpsResponse
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order, Product

NOW = datetime(2026, 12, 1, 10, tzinfo=UTC)
RICE_COOKER = ("RC-18", "Nồi cơm điện Bếp Việt 1.8L", 1_290_000)
AIR_FRYER = ("AF-55", "Nồi chiên không dầu Bếp Việt 5.5L", 1_990_000)


def build(engine, now: datetime = NOW) -> dict[str, int]:
    """The customers, by name, their history dated back from ``now``:

    ======  ===========================================================================================
    an      verified phone; rice cooker 340 days ago and air fryer 20 days ago (by phone, the latter
            with an email); NPS 3 then 10 (promoter); CSAT 1 then 5; Telegram
    binh    rice cooker 350 days ago (order names them, phone unverified); a complaint open (escalated
            for a defect); NPS 5 (detractor); CSAT 2; Zalo OA
    cuong   unverified phone with a rice cooker order 340 days ago that names nobody (not theirs);
            a resolved conversation tagged "vip"; opted out of care; Messenger
    dung    a rice cooker cancelled 340 days ago; one bought 400 days ago on a line with only the
            product's name; NPS 8 (passive); Zalo bot
    em      merged into an: never a member
    phuc    nothing but a web chat
    ======  ===========================================================================================
    """
    def days_ago(days: float) -> datetime:
        return now - timedelta(days=days)

    with Session(engine) as session:
        session.add_all([Product(sku=sku, name=name, price_vnd=price) for sku, name, price in (RICE_COOKER, AIR_FRYER)])
        people = {name: Customer(name=name.title()) for name in ("an", "binh", "cuong", "dung", "em", "phuc")}
        people["an"].phone, people["an"].phone_verified = "0900000001", True
        people["cuong"].phone, people["cuong"].care_opted_out = "0900000003", True
        session.add_all(people.values())
        session.flush()
        people["em"].merged_into_id = people["an"].id
        ids = {name: c.id for name, c in people.items()}
        identities = {name: ChannelIdentity(customer_id=ids[name], channel=channel, external_id=f"ext-{name}")
                      for name, channel in (("an", "telegram"), ("binh", "zalo_oa"), ("cuong", "facebook"),
                                            ("dung", "zalo_bot"), ("em", "telegram"), ("phuc", "webchat"))}
        session.add_all(identities.values())
        session.flush()

        def order(code, product, when, *, phone="0999999999", customer=None, status="delivered", by_name=False,
                  email=None):
            sku, name, price = product
            line = {"name": name, "qty": 1} if by_name else {"sku": sku, "name": name, "qty": 1}
            session.add(Order(code=code, phone=phone, customer_id=ids[customer] if customer else None,
                              status=status, items=[line], total_vnd=price, email=email,
                              created_at=days_ago(when)))

        order("DH1", RICE_COOKER, 340, phone="0900000001")
        order("DH2", AIR_FRYER, 20, phone="0900000001", email="an@example.vn")
        order("DH3", RICE_COOKER, 350, phone="0900000002", customer="binh")
        order("DH4", RICE_COOKER, 340, phone="0900000003")
        order("DH5", RICE_COOKER, 340, phone="0900000004", customer="dung", status="cancelled")
        order("DH6", RICE_COOKER, 400, phone="0900000004", customer="dung", by_name=True)

        def conversation(name, **fields):
            row = Conversation(customer_id=ids[name], identity_id=identities[name].id,
                               channel=identities[name].channel, created_at=days_ago(5), **fields)
            session.add(row)
            session.flush()
            return row

        conversation("binh", state="with_agent", escalation_reason="report_defect", escalated_at=days_ago(5))
        tagged = conversation("cuong", state="resolved", resolved_at=days_ago(4))
        session.add(ConversationTag(conversation_id=tagged.id, tag="vip"))
        for name, score, when in (("an", 3, 200), ("an", 10, 10), ("binh", 5, 30), ("dung", 8, 60)):
            session.add(NpsResponse(customer_id=ids[name], identity_id=identities[name].id, channel="telegram",
                                    score=score, asked_at=days_ago(when + 1), at=days_ago(when)))
        for name, stars, when in (("an", 1, 100), ("an", 5, 3), ("binh", 2, 4)):
            session.add(Rating(kind="csat", score=stars, customer_id=ids[name], created_at=days_ago(when)))
        session.add(Rating(kind="delivery", score=1, customer_id=ids["an"], created_at=days_ago(1)))
        session.commit()
    return ids

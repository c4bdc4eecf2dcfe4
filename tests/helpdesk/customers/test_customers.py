"""One customer across channels: verified phones link identities; who sees which customer; supervisors
merge and split; one timeline."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from helpdesk.audit.models import AuditEntry
from helpdesk.conversations.models import Conversation
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate
from helpdesk.core.errors import BadRequest, Conflict
from helpdesk.customers.models import ChannelIdentity, Customer, CustomerMerge
from helpdesk.customers.service import (
    find_merge,
    identify_sender,
    link_verified_phone,
    merge_customers,
    normalise_phone,
    split_customer,
)
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order


@pytest.mark.parametrize("raw", ["0901234567", "090 123 4567", "090.123.4567", "+84 901 234 567",
                                 "84901234567", "+84-90-123-4567"])
def test_common_phone_formats_normalise_to_ten_digits(raw):
    assert normalise_phone(raw) == "0901234567"


@pytest.mark.parametrize("raw", ["12345", "0901234", "abc", "+1 415 555 0100"])
def test_non_vietnamese_mobiles_are_not_phones(raw):
    assert normalise_phone(raw) is None


@pytest.fixture
def session(sqlite_url):
    engine = make_database_engine(sqlite_url)
    migrate(engine)
    with Session(engine) as session:
        yield session
    engine.dispose()


def test_same_verified_phone_on_two_channels_links_them_to_one_customer(session):
    telegram_customer, _ = identify_sender(session, "telegram", "111")
    zalo_customer, _ = identify_sender(session, "cli", "zzz")
    link_verified_phone(session, telegram_customer, "0901234567")
    merged = link_verified_phone(session, zalo_customer, "+84 901 234 567")
    session.commit()
    assert merged.id == telegram_customer.id
    identities = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == merged.id)).all()
    assert {i.channel for i in identities} == {"telegram", "cli"}
    assert session.get(Customer, zalo_customer.id).merged_into_id == merged.id
    # the merged identity now speaks as the primary customer
    again, _ = identify_sender(session, "cli", "zzz")
    assert again.id == merged.id


def test_an_invalid_phone_is_refused(session):
    customer, _ = identify_sender(session, "telegram", "222")
    with pytest.raises(BadRequest):
        link_verified_phone(session, customer, "12")


async def test_agent_merges_two_customers_and_sees_one_timeline(client):
    for sender, text in (("visitor-a", "bảo hành bao lâu vậy shop"), ("visitor-b", "cho mình gặp nhân viên")):
        response = await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-1",
                                                           "text": text})
        assert response.status_code == 200
        await client.settle()  # one after the other, so the timeline order is known
    headers = await client.login()
    conversations = (await client.get("/api/conversations", headers=headers)).json()["data"]
    first, second = sorted({c["customer_id"] for c in conversations})
    merged = await client.post(f"/api/customers/{first}/merge", json={"other_id": second}, headers=headers)
    assert merged.status_code == 200
    assert len(merged.json()["identities"]) == 2
    messages = (await client.get(f"/api/customers/{second}/messages", headers=headers)).json()
    assert messages["customer_id"] == first
    texts = [m["text"] for m in messages["data"] if m["author"] == "customer"]
    assert texts == ["bảo hành bao lâu vậy shop", "cho mình gặp nhân viên"]
    timeline = (await client.get(f"/api/customers/{second}/timeline", headers=headers)).json()
    assert timeline["customer_id"] == first
    assert [e["kind"] for e in timeline["data"]].count("conversation_opened") == 2
    assert timeline["data"][0]["kind"] == "identity_merged"


async def test_merging_a_customer_into_itself_is_400(client):
    await client.post("/webhooks/cli", json={"sender_id": "solo", "message_id": "solo-1", "text": "alo"})
    await client.settle()
    headers = await client.login()
    customer_id = (await client.get("/api/conversations", headers=headers)).json()["data"][0]["customer_id"]
    response = await client.post(f"/api/customers/{customer_id}/merge", json={"other_id": customer_id},
                                 headers=headers)
    assert response.status_code == 400


async def test_unknown_customer_is_404(client):
    headers = await client.login()
    assert (await client.get("/api/customers/999", headers=headers)).status_code == 404


# -- who sees which customer, merging and splitting ------------------------------------------------

AGENT_PASSWORD = "agent-pass-1"


async def make_agent(client, admin, email: str, *, role: str = "agent", teams: tuple[str, ...] = ()) -> dict:
    """An account of this role in these teams; its authorization headers."""
    response = await client.post("/api/agents", headers=admin, json={
        "email": email, "name": email.split("@")[0], "password": AGENT_PASSWORD, "role": role,
        "teams": list(teams)})
    assert response.status_code == 201, response.text
    return await client.login(email, AGENT_PASSWORD)


async def customer_in_team(client, admin, sender: str, team: str | None) -> tuple[int, int]:
    """A customer who asked for a person, their conversation moved to ``team``'s queue; (customer id,
    conversation id)."""
    await client.post("/webhooks/cli", json={"sender_id": sender, "message_id": f"{sender}-1",
                                             "text": "cho mình gặp nhân viên", "name": f"Khách {sender}"})
    await client.settle()
    with Session(client.wiring.engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.external_id == sender)).one()
        conversation = session.exec(select(Conversation).where(Conversation.identity_id == identity.id)).one()
    if team is not None:
        created = await client.post("/api/teams", headers=admin, json={"name": team})
        assert created.status_code in (201, 409), created.text  # 409: the team exists already
        moved = await client.post(f"/api/conversations/{conversation.id}/assign", headers=admin,
                                  json={"team": team})
        assert moved.status_code == 200, moved.text
    return conversation.customer_id, conversation.id


async def test_a_customer_of_another_team_is_404_for_an_agent(client):
    admin = await client.login()
    care = await make_agent(client, admin, "care@test.local", teams=("care",))
    tech = await make_agent(client, admin, "tech@test.local", teams=("technical",))
    customer_id, _ = await customer_in_team(client, admin, "scoped-1", "care")

    assert (await client.get(f"/api/customers/{customer_id}", headers=care)).status_code == 200
    for path in (f"/api/customers/{customer_id}", f"/api/customers/{customer_id}/timeline",
                 f"/api/customers/{customer_id}/messages"):
        response = await client.get(path, headers=tech)
        assert response.status_code == 404, path
        assert response.json() == {"detail": f"customer {customer_id} not found"}  # as for an unknown id


async def test_a_customer_without_a_conversation_is_only_for_admins(client):
    admin = await client.login()
    agent = await make_agent(client, admin, "plain@test.local")
    with Session(client.wiring.engine) as session:
        customer_id = identify_sender(session, "telegram", "no-conversation")[0].id
        session.commit()
    assert (await client.get(f"/api/customers/{customer_id}", headers=agent)).status_code == 404
    assert (await client.get(f"/api/customers/{customer_id}", headers=admin)).status_code == 200


async def test_an_agent_may_not_merge_customers(client):
    admin = await client.login()
    agent = await make_agent(client, admin, "merger@test.local")
    first, _ = await customer_in_team(client, admin, "m-agent-1", None)
    second, _ = await customer_in_team(client, admin, "m-agent-2", None)
    response = await client.post(f"/api/customers/{first}/merge", json={"other_id": second}, headers=agent)
    assert response.status_code == 403
    with Session(client.wiring.engine) as session:
        assert session.get(Customer, second).merged_into_id is None


async def test_a_supervisor_merges_only_customers_they_may_see(client):
    admin = await client.login()
    lead = await make_agent(client, admin, "lead@test.local", role="supervisor", teams=("care",))
    ours, _ = await customer_in_team(client, admin, "m-lead-1", "care")
    also_ours, _ = await customer_in_team(client, admin, "m-lead-2", "care")
    theirs, _ = await customer_in_team(client, admin, "m-lead-3", "technical")

    refused = await client.post(f"/api/customers/{ours}/merge", json={"other_id": theirs}, headers=lead)
    assert refused.status_code == 404
    merged = await client.post(f"/api/customers/{ours}/merge", json={"other_id": also_ours}, headers=lead)
    assert merged.status_code == 200, merged.text
    assert len(merged.json()["identities"]) == 2


async def test_a_supervisor_splits_a_merge_and_both_customers_are_as_before(client):
    admin = await client.login()
    lead = await make_agent(client, admin, "split-lead@test.local", role="supervisor", teams=("care",))
    first, first_conversation = await customer_in_team(client, admin, "split-1", "care")
    second, second_conversation = await customer_in_team(client, admin, "split-2", "care")
    before = {c: (await client.get(f"/api/customers/{c}", headers=admin)).json() for c in (first, second)}
    assert (await client.post(f"/api/customers/{first}/merge", json={"other_id": second},
                              headers=lead)).status_code == 200

    [merge] = (await client.get(f"/api/customers/{first}/merges", headers=lead)).json()["data"]
    assert merge["merged_id"] == second and merge["moved"]["conversations"] == [second_conversation]
    split = await client.post(f"/api/customers/{first}/split", json={"customer_id": second}, headers=lead)
    assert split.status_code == 200, split.text
    assert split.json() == before[second]
    assert (await client.get(f"/api/customers/{first}", headers=admin)).json() == before[first]
    with Session(client.wiring.engine) as session:
        assert session.get(Conversation, second_conversation).customer_id == second
        assert session.get(Conversation, first_conversation).customer_id == first
        actions = [e.action for e in session.exec(select(AuditEntry).where(AuditEntry.entity_type == "customer")
                                                   .order_by(AuditEntry.id))]
    assert actions == ["customers_merged", "customers_split"]

    again = await client.post(f"/api/customers/{first}/split", json={"merge_id": merge["id"]}, headers=lead)
    assert again.status_code == 409


async def test_splitting_what_was_never_merged_is_refused_clearly(client):
    admin = await client.login()
    first, _ = await customer_in_team(client, admin, "never-1", None)
    second, _ = await customer_in_team(client, admin, "never-2", None)
    for body, status in (({"customer_id": second}, 404), ({"merge_id": 12345}, 404), ({}, 422),
                         ({"customer_id": second, "merge_id": 1}, 422)):
        response = await client.post(f"/api/customers/{first}/split", json=body, headers=admin)
        assert response.status_code == status, (body, response.text)
    assert (await client.post("/api/customers/99999/split", json={"customer_id": first},
                              headers=admin)).status_code == 404
    assert (await client.post(f"/api/customers/{first}/merge", json={"other_id": 99999},
                              headers=admin)).status_code == 404


async def test_an_agent_may_not_split(client):
    admin = await client.login()
    agent = await make_agent(client, admin, "splitter@test.local")
    first, _ = await customer_in_team(client, admin, "agent-split-1", None)
    second, _ = await customer_in_team(client, admin, "agent-split-2", None)
    await client.post(f"/api/customers/{first}/merge", json={"other_id": second}, headers=admin)
    response = await client.post(f"/api/customers/{first}/split", json={"customer_id": second}, headers=agent)
    assert response.status_code == 403


def _merge_fixture(session):
    """Two customers, the second with a phone, an email, an order and a rating of its own."""
    primary, _ = identify_sender(session, "telegram", "primary-1", "Lan")
    secondary, identity = identify_sender(session, "facebook", "secondary-1", "Lan N.")
    secondary.phone, secondary.phone_verified, secondary.email = "0907654321", True, "lan@example.vn"
    order = Order(code="DH300001", phone="0907654321", customer_id=secondary.id)
    session.add(order)
    session.flush()
    rating = Rating(kind="delivery", score=5, customer_id=secondary.id, order_id=order.id)
    session.add(rating)
    session.flush()
    return primary, secondary, identity, order, rating


def test_a_merge_records_what_moved_and_a_split_puts_it_back(session):
    primary, secondary, identity, order, rating = _merge_fixture(session)
    merge_customers(session, primary, secondary, actor_type="agent", actor_id=1)
    session.commit()
    assert (primary.phone, primary.phone_verified, primary.email, primary.name) == (
        "0907654321", True, "lan@example.vn", "Lan")
    assert (identity.customer_id, order.customer_id, rating.customer_id) == (primary.id,) * 3
    record = session.exec(select(CustomerMerge)).one()
    assert record.moved == {"identities": [identity.id], "conversations": [], "orders": [order.id],
                            "ratings": [rating.id]}
    assert record.copied == {"phone": [None, "0907654321"], "email": [None, "lan@example.vn"],
                             "phone_verified": [False, True]}

    split_customer(session, find_merge(session, primary, merged_customer_id=secondary.id), actor_id=1)
    session.commit()
    assert (primary.phone, primary.phone_verified, primary.email, primary.name) == (None, False, None, "Lan")
    assert (identity.customer_id, order.customer_id, rating.customer_id) == (secondary.id,) * 3
    assert secondary.merged_into_id is None
    assert identify_sender(session, "facebook", "secondary-1")[0].id == secondary.id


def test_a_split_leaves_what_was_changed_since_the_merge(session):
    primary, secondary, identity, order, _ = _merge_fixture(session)
    merge_customers(session, primary, secondary)
    primary.email = "lan.new@example.vn"  # an agent corrected it after the merge
    third, _ = identify_sender(session, "cli", "third-1")
    order.customer_id = third.id  # the shop moved the order to someone else
    session.commit()
    split_customer(session, find_merge(session, primary, merged_customer_id=secondary.id))
    assert primary.email == "lan.new@example.vn"
    assert order.customer_id == third.id
    assert identity.customer_id == secondary.id


def test_a_merge_does_not_verify_the_primarys_own_other_phone(session):
    primary, _ = identify_sender(session, "telegram", "claims-1")
    primary.phone = "0901111111"  # typed, never verified
    secondary, _ = identify_sender(session, "facebook", "verified-1")
    secondary.phone, secondary.phone_verified = "0902222222", True
    merge_customers(session, primary, secondary)
    assert (primary.phone, primary.phone_verified) == ("0901111111", False)


def test_a_merge_by_verified_phone_is_recorded_and_can_be_split(session):
    older, _ = identify_sender(session, "telegram", "auto-1")
    newer, newer_identity = identify_sender(session, "cli", "auto-2")
    link_verified_phone(session, older, "0903333333")
    assert link_verified_phone(session, newer, "0903333333").id == older.id
    session.commit()
    record = session.exec(select(CustomerMerge)).one()
    assert (record.primary_id, record.merged_id, record.actor_type) == (older.id, newer.id, "system")

    split_customer(session, record)
    session.commit()
    assert newer_identity.customer_id == newer.id and newer.merged_into_id is None
    # each keeps the number they verified themselves
    assert (older.phone, older.phone_verified, newer.phone, newer.phone_verified) == (
        "0903333333", True, "0903333333", True)


def test_splitting_into_a_customer_that_was_merged_on_is_refused(session):
    first, _ = identify_sender(session, "telegram", "chain-1")
    second, _ = identify_sender(session, "telegram", "chain-2")
    third, _ = identify_sender(session, "telegram", "chain-3")
    merge_customers(session, second, third)
    merge_customers(session, first, second)
    with pytest.raises(Conflict):
        split_customer(session, find_merge(session, second, merged_customer_id=third.id))
    split_customer(session, find_merge(session, first, merged_customer_id=second.id))
    split_customer(session, find_merge(session, second, merged_customer_id=third.id))
    assert third.merged_into_id is None and second.merged_into_id is None


# -- merging an already merged customer, splitting one identity off ---------------------------------


async def test_merging_a_customer_that_is_already_merged_is_409(client):
    admin = await client.login()
    first, _ = await customer_in_team(client, admin, "again-1", None)
    second, _ = await customer_in_team(client, admin, "again-2", None)
    third, _ = await customer_in_team(client, admin, "again-3", None)
    assert (await client.post(f"/api/customers/{first}/merge", json={"other_id": second},
                              headers=admin)).status_code == 200
    for target in (first, third):
        response = await client.post(f"/api/customers/{target}/merge", json={"other_id": second}, headers=admin)
        assert response.status_code == 409, response.text
        assert response.json()["detail"] == f"customer {second} is already merged into customer {first}"
    with Session(client.wiring.engine) as session:
        # nothing moved to the third customer
        assert session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == third)).all()[0] \
            .external_id == "again-3"
        assert session.get(Customer, first).merged_into_id is None


async def test_a_supervisor_splits_one_identity_off_into_a_new_customer(client):
    admin = await client.login()
    lead = await make_agent(client, admin, "identity-lead@test.local", role="supervisor", teams=("care",))
    first, first_conversation = await customer_in_team(client, admin, "ident-1", "care")
    second, second_conversation = await customer_in_team(client, admin, "ident-2", "care")
    with Session(client.wiring.engine) as session:
        rating = Rating(kind="csat", score=2, customer_id=second, conversation_id=second_conversation)
        session.add(rating)
        session.add(Order(code="DH777001", phone="0901112222", customer_id=second))
        session.commit()
        rating_id = rating.id
    merged = await client.post(f"/api/customers/{first}/merge", json={"other_id": second}, headers=lead)
    identity = next(i for i in merged.json()["identities"] if i["external_id"] == "ident-2")

    split = await client.post(f"/api/customers/{first}/identities/{identity['id']}/split", headers=lead)
    assert split.status_code == 200, split.text
    new = split.json()
    assert new["id"] not in (first, second) and [i["id"] for i in new["identities"]] == [identity["id"]]
    with Session(client.wiring.engine) as session:
        assert session.get(Conversation, second_conversation).customer_id == new["id"]
        assert session.get(Conversation, first_conversation).customer_id == first
        assert session.exec(select(Rating)).one().customer_id == new["id"]
        # the order and the merge record stay with the customer the identity was split from
        assert session.exec(select(Order).where(Order.code == "DH777001")).one().customer_id == first
        entries = session.exec(select(AuditEntry).where(AuditEntry.action.in_(
            ["customer_identity_split", "customer_created_by_split"])).order_by(AuditEntry.id)).all()
    assert [(e.action, e.entity_id, e.actor_id is not None) for e in entries] == [
        ("customer_identity_split", first, True), ("customer_created_by_split", new["id"], True)]
    assert entries[0].details["moved"] == {"identities": [identity["id"]], "conversations": [second_conversation],
                                           "ratings": [rating_id]}
    # a customer's message on the split identity now reaches the new customer
    with Session(client.wiring.engine) as session:
        assert identify_sender(session, "cli", "ident-2")[0].id == new["id"]
    kinds = [e["kind"] for e in (await client.get(f"/api/customers/{first}/timeline", headers=lead)).json()["data"]]
    assert kinds[0] == "identity_split_off" and "identity_merged" in kinds
    theirs = (await client.get(f"/api/customers/{new['id']}/timeline", headers=lead)).json()["data"]
    assert theirs[0]["kind"] == "split_from" and theirs[0]["details"]["from_customer_id"] == first


async def test_splitting_an_identity_is_refused_clearly(client):
    admin = await client.login()
    agent = await make_agent(client, admin, "ident-agent@test.local")
    first, _ = await customer_in_team(client, admin, "ident-ref-1", None)
    second, _ = await customer_in_team(client, admin, "ident-ref-2", None)
    with Session(client.wiring.engine) as session:
        own = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == first)).one().id
        theirs = session.exec(select(ChannelIdentity).where(ChannelIdentity.customer_id == second)).one().id
    only = await client.post(f"/api/customers/{first}/identities/{own}/split", headers=admin)
    assert only.status_code == 409 and "only one" in only.json()["detail"]
    assert (await client.post(f"/api/customers/{first}/identities/{theirs}/split",
                              headers=admin)).status_code == 404
    assert (await client.post(f"/api/customers/{first}/identities/99999/split", headers=admin)).status_code == 404
    assert (await client.post(f"/api/customers/99999/identities/{own}/split", headers=admin)).status_code == 404
    assert (await client.post(f"/api/customers/{first}/identities/{own}/split",
                              headers=agent)).status_code == 403
    with Session(client.wiring.engine) as session:
        assert session.exec(select(AuditEntry).where(AuditEntry.action == "customer_identity_split")).all() == []

"""GET /api/search on SQLite and PostgreSQL: accents and case ignored, phones in any format, order codes,
prefix of the last word, safe snippets, what an agent may see, and 422 for a query with nothing in it."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from helpdesk.conversations.models import Conversation
from helpdesk.customers.models import Customer
from helpdesk.shop.models import Order
from tests.conftest import start_client

PASSWORD = "agent-pass-1"


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_client(request, make_settings):
    settings = make_settings() if request.param == "sqlite" else make_settings(
        database_url=request.getfixturevalue("postgres_url"))
    async for client in start_client(settings):
        yield client


async def say(client, sender: str, text: str, name: str | None = None, n: int = 1) -> int:
    """A customer writes on the cli channel; the id of their conversation."""
    body = {"sender_id": sender, "message_id": f"{sender}-{n}", "text": text}
    if name:
        body["name"] = name
    response = await client.post("/webhooks/cli", json=body)
    assert response.status_code == 200, response.text
    await client.settle()
    with Session(client.wiring.engine) as session:
        return session.exec(select(Conversation).order_by(Conversation.id.desc())).first().id


async def search(client, headers, q: str) -> dict:
    response = await client.get("/api/search", params={"q": q}, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"conversations", "customers"}
    return body


def conversation_ids(body: dict) -> list[int]:
    return [hit["conversation_id"] for hit in body["conversations"]]


async def test_words_without_accents_find_the_accented_message(any_client):
    headers = await any_client.login()
    wanted = await say(any_client, "s-1", "Cho em hỏi BẢO HÀNH máy lọc nước ở Đà Nẵng", name="Lan")
    other = await say(any_client, "s-2", "Giao hàng mất mấy ngày vậy shop", name="Minh")
    for q in ("bao hanh", "bảo hành", "BAO HANH", "da nang", "đà nẵng", "bao han"):
        found = conversation_ids(await search(any_client, headers, q))
        assert wanted in found, q
        assert other not in found, q
    hit = (await search(any_client, headers, "bao hanh"))["conversations"][0]
    assert hit["customer_name"] == "Lan" and hit["channel"] == "cli" and hit["matched"] == "message"
    assert hit["status"] and hit["last_activity_at"]
    # the bot's answer may be the most recent match: either way, the words are marked as written
    marked = [p["text"] for p in hit["snippet_parts"] if p["match"]]
    assert [word.lower() for word in marked] == ["bảo", "hành"]
    assert f"<mark>{marked[0]}</mark> <mark>{marked[1]}</mark>" in hit["snippet"]
    assert conversation_ids(await search(any_client, headers, "bao hanh xe")) == []


async def test_snippet_escapes_markup_from_the_message(any_client):
    headers = await any_client.login()
    await say(any_client, "x-1", 'zyxwv <img src=x onerror="alert(1)">')
    hit = (await search(any_client, headers, "zyxwv"))["conversations"][0]
    assert "<img" not in hit["snippet"] and "&lt;img" in hit["snippet"]


async def test_customers_are_found_by_name_phone_channel_id_and_order_code(any_client):
    headers = await any_client.login()
    conversation_id = await say(any_client, "tg-778899", "xin chào", name="Nguyễn Thị Hồng")
    with Session(any_client.wiring.engine) as session:
        customer = session.get(Conversation, conversation_id).customer_id
        session.get(Customer, customer).phone = "0912345678"
        session.add(Order(code="DH778001", phone="0912345678", customer_id=customer, customer_name="Hồng"))
        session.commit()
    for q, matched in (("nguyen thi hong", "name"), ("hồng", "name"), ("0912 345 678", "phone"),
                       ("+84 912345678", "phone"), ("84912345678", "phone"), ("912 345", "phone"),
                       ("tg-778899", "customer"), ("dh778001", "order"), ("DH778", "order")):
        body = await search(any_client, headers, q)
        customers = [(c["id"], c["matched"]) for c in body["customers"]]
        assert (customer, matched) in customers, (q, customers)
        assert conversation_id in conversation_ids(body), q
        assert body["customers"][0]["conversation_id"] == conversation_id
    assert (await search(any_client, headers, "0987 000 111"))["customers"] == []


async def test_best_match_first_then_most_recent(any_client):
    headers = await any_client.login()
    # made-up words, which nothing the bot answers contains
    exact = await say(any_client, "r-1", "cái zữa qươm này")
    words = await say(any_client, "r-2", "qươm hay zữa")
    newest_exact = await say(any_client, "r-3", "zữa qươm nhé")
    found = conversation_ids(await search(any_client, headers, "zữa qươm"))
    assert found == [newest_exact, exact, words]


async def make_agent(client, admin, email, teams):
    response = await client.post("/api/agents", headers=admin, json={
        "email": email, "name": email.split("@")[0], "password": PASSWORD, "role": "agent", "teams": teams})
    assert response.status_code == 201, response.text
    return await client.login(email, PASSWORD)


async def test_an_agent_outside_the_team_finds_nothing_of_its_conversations(any_client):
    admin = await any_client.login()
    care = await make_agent(any_client, admin, "care@test.local", ["care"])
    tech = await make_agent(any_client, admin, "tech@test.local", ["technical"])
    secret = await say(any_client, "team-1", "cho mình gặp nhân viên về bảo hành", name="Khách Riêng")
    moved = await any_client.post(f"/api/conversations/{secret}/assign", headers=admin, json={"team": "care"})
    assert moved.status_code == 200
    for headers, sees in ((admin, True), (care, True), (tech, False)):
        body = await search(any_client, headers, "bao hanh")
        assert (secret in conversation_ids(body)) is sees
        body = await search(any_client, headers, "khach rieng")
        assert (secret in conversation_ids(body)) is sees
        assert bool(body["customers"]) is sees


@pytest.mark.parametrize("q", ["", "   ", "?!…", "x" * 201])
async def test_an_empty_or_overlong_query_is_422_with_a_reason(any_client, q):
    headers = await any_client.login()
    response = await any_client.get("/api/search", params={"q": q}, headers=headers)
    assert response.status_code == 422
    assert "q" in str(response.json()["detail"])


async def test_search_needs_a_signed_in_agent(any_client):
    assert (await any_client.get("/api/search", params={"q": "bao"})).status_code == 401


def test_a_missing_or_invalid_postgresql_index_is_built_concurrently(postgres_url):
    """What the migration leaves for a large table (or a build that was interrupted) is built after
    start-up, and the search then uses it."""
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate
    from helpdesk.search.indexes import SEARCH_INDEXES, build_missing

    engine = make_database_engine(postgres_url)
    try:
        migrate(engine)
        assert build_missing(engine) == []
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("DROP INDEX ix_messages_search")
        assert build_missing(engine) == ["ix_messages_search"]
        with engine.connect() as connection:
            names = {row[0] for row in connection.exec_driver_sql(
                "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'ix_%%_search'")}
            assert names == set(SEARCH_INDEXES)
            connection.exec_driver_sql("SET enable_seqscan = off")
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(
                "EXPLAIN SELECT id FROM messages WHERE "
                "search_vector @@ to_tsquery('simple'::regconfig, 'bao & hanh:*')"))
            assert "ix_messages_search" in plan
    finally:
        engine.dispose()


def test_messages_and_customers_stored_before_the_migration_are_found(database_url):
    """The migration indexes what is already there (SQLite: the FTS tables are filled from the rows;
    PostgreSQL: expression indexes cover existing rows)."""
    from alembic import command

    from helpdesk.agents.models import Agent
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import alembic_config, migrate
    from helpdesk.customers.models import ChannelIdentity
    from helpdesk.conversations.models import Message
    from helpdesk.search.service import search
    from helpdesk.search.terms import read_terms

    engine = make_database_engine(database_url)
    try:
        with engine.begin() as connection:
            config = alembic_config(database_url)
            config.attributes["connection"] = connection
            command.upgrade(config, "0014")
        with Session(engine) as session:
            customer = Customer(name="Trương Mỹ Lệ", phone="0987654321")
            session.add(customer)
            session.flush()
            identity = ChannelIdentity(customer_id=customer.id, channel="telegram", external_id="55501")
            session.add(identity)
            session.flush()
            conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel="telegram")
            session.add(conversation)
            session.flush()
            session.add(Message(conversation_id=conversation.id, direction="in", author="customer",
                                channel="telegram", text="Đổi trả ấm siêu tốc được không?"))
            session.add(Agent(email="old@test.local", name="Old", password_hash="-", role="admin"))
            session.commit()
            conversation_id, customer_id = conversation.id, customer.id
        migrate(engine)
        with Session(engine) as session:
            admin = session.exec(select(Agent).where(Agent.email == "old@test.local")).one()
            found = search(session, admin, read_terms("doi tra am sieu toc"))
            assert [hit.conversation_id for hit in found.conversations] == [conversation_id]
            assert [hit.id for hit in search(session, admin, read_terms("truong my le")).customers] == [customer_id]
            assert [hit.id for hit in search(session, admin, read_terms("55501")).customers] == [customer_id]
    finally:
        engine.dispose()


def test_postgresql_message_vectors_follow_edits_and_are_backfilled_in_batches(postgres_url):
    """PostgreSQL matches messages on ``messages.search_vector``: the trigger sets it on insert and
    on a change of the text, and messages left without one (written before the migration on a large
    table) are filled by build_missing, batch by batch, before they can be found."""
    from helpdesk.agents.models import Agent
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.conversations.models import Message
    from helpdesk.core.db import migrate
    from helpdesk.customers.models import ChannelIdentity
    from helpdesk.search.indexes import BACKFILL_BATCH, build_missing
    from helpdesk.search.service import search
    from helpdesk.search.terms import read_terms

    engine = make_database_engine(postgres_url)
    try:
        migrate(engine)
        with Session(engine) as session:
            customer = Customer(name="Khách")
            session.add(customer)
            session.flush()
            identity = ChannelIdentity(customer_id=customer.id, channel="cli", external_id="v-1")
            session.add(identity)
            session.flush()
            conversation = Conversation(customer_id=customer.id, identity_id=identity.id, channel="cli")
            session.add(conversation)
            session.flush()
            # ids in three backfill batches
            for number, words in enumerate(("nồi cơm điện", "máy xay sinh tố", "bình giữ nhiệt")):
                session.add(Message(id=1 + number * (BACKFILL_BATCH + 1), conversation_id=conversation.id,
                                    direction="in", author="customer", channel="cli", text=f"Hỏi về {words}"))
            admin = Agent(email="admin@vector.test", name="Admin", password_hash="-", role="admin")
            session.add(admin)
            session.commit()

            def found(q: str) -> list[int | None]:
                session.rollback()
                return sorted(hit.message_id for hit in search(session, admin, read_terms(q)).conversations)

            assert found("may xay") == [BACKFILL_BATCH + 2]
            edited = session.get(Message, BACKFILL_BATCH + 2)
            edited.text = "Hỏi về ấm siêu tốc"
            session.commit()
            assert found("may xay") == []
            assert found("am sieu toc") == [BACKFILL_BATCH + 2]

            # as the migration leaves a large table: vectors not set, the messages' index not built
            session.execute(text("UPDATE messages SET search_vector = NULL"))
            session.execute(text("DROP INDEX ix_messages_search"))
            session.commit()
            assert found("noi com") == [] and found("binh giu") == []
        assert build_missing(engine) == ["ix_messages_search"]  # vectors filled first, then the index
        assert build_missing(engine) == []  # the next start finds nothing to do
        with Session(engine) as session:
            admin = session.exec(select(Agent).where(Agent.email == "admin@vector.test")).one()
            assert [hit.message_id for hit in search(session, admin, read_terms("noi com")).conversations] == [1]
            assert session.execute(text("SELECT count(*) FROM messages WHERE search_vector IS NULL")).scalar() == 0
    finally:
        engine.dispose()

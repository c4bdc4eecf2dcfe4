"""Each kind of condition matches exactly the customers it should, alone, negated and combined, on
SQLite and PostgreSQL (the data: ``factories.build``)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from helpdesk.segments.conditions import InvalidSegment
from helpdesk.segments.schemas import DEFINITION
from helpdesk.segments.service import matching_ids
from tests.helpdesk.segments.factories import NOW, build

#: definitions and who they match
CASES = [
    ([{"kind": "bought", "product": "RC-18", "from_days_ago": 330, "to_days_ago": 365}], {"an", "binh"}),
    ([{"kind": "bought", "product": "nồi cơm điện bếp việt 1.8l"}], {"an", "binh", "dung"}),
    ([{"kind": "bought", "product": "Nồi"}], {"an", "binh", "dung"}),  # rice cooker and air fryer
    ([{"kind": "bought", "product": "nồi chiên"}], {"an"}),
    ([{"kind": "bought", "from_days_ago": 0, "to_days_ago": 30}], {"an"}),
    ([{"kind": "bought", "to_days_ago": 345}], {"an"}),
    ([{"kind": "bought", "product": "RC-18", "from_days_ago": 330, "to_days_ago": 365, "not": True}],
     {"cuong", "dung", "phuc"}),
    ([{"kind": "bought", "product": "RC-18", "from_days_ago": 330, "to_days_ago": 365},
      {"kind": "open_complaint", "not": True}], {"an"}),
    ([{"kind": "order_count", "min": 2}], {"an"}),
    ([{"kind": "order_count", "max": 0}], {"cuong", "phuc"}),
    ([{"kind": "total_spent", "min": 2_000_000}], {"an"}),
    ([{"kind": "total_spent", "min": 1, "max": 1_290_000}], {"binh", "dung"}),
    ([{"kind": "last_order", "from_days_ago": 300, "to_days_ago": 400}], {"binh", "dung"}),
    ([{"kind": "last_order", "from_days_ago": 300, "not": True}], {"an", "cuong", "phuc"}),
    ([{"kind": "open_complaint"}], {"binh"}),
    ([{"kind": "nps", "category": "promoter"}], {"an"}),
    ([{"kind": "nps", "category": "passive"}], {"dung"}),
    ([{"kind": "nps", "category": "detractor"}], {"binh"}),
    ([{"kind": "nps", "category": "promoter", "not": True}], {"binh", "cuong", "dung", "phuc"}),
    ([{"kind": "csat", "max": 2}], {"binh"}),
    ([{"kind": "csat", "max": 2, "not": True}], {"an", "cuong", "dung", "phuc"}),
    ([{"kind": "csat", "min": 4}], {"an"}),
    ([{"kind": "channel", "channel": "zalo"}], {"binh", "dung"}),
    ([{"kind": "channel", "channel": "zalo_oa"}], {"binh"}),
    ([{"kind": "channel", "channel": "telegram"}], {"an"}),
    ([{"kind": "tag", "tag": " VIP "}], {"cuong"}),
    ([{"kind": "opted_out"}], {"cuong"}),
    ([{"kind": "opted_out", "not": True}, {"kind": "order_count", "max": 0}], {"phuc"}),
]


@pytest.fixture
def shop(database_url):
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate

    engine = make_database_engine(database_url)
    migrate(engine)
    ids = build(engine)
    yield engine, ids
    engine.dispose()


def test_each_condition_matches_exactly_its_customers(shop):
    engine, ids = shop
    names = {i: name for name, i in ids.items()}
    with Session(engine) as session:
        for definition, expected in CASES:
            found = matching_ids(session, DEFINITION.validate_python(definition), NOW)
            assert found == sorted(found)
            assert {names[i] for i in found} == expected, definition


def test_a_product_no_longer_in_the_catalogue_is_found_on_the_order_lines(shop):
    from sqlalchemy import text

    engine, ids = shop
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO orders (code, phone, customer_id, status, items, total_vnd, created_at) "
                                "VALUES ('DH11', '0999999999', :id, 'delivered', :items, 1, :at)"),
                           {"id": ids["phuc"], "items": '[{"sku": "OLD-7", "name": "Quạt cũ"}]',
                            "at": NOW.replace(tzinfo=None)})
    with Session(engine) as session:
        for product in ("old-7", "Quạt cũ"):
            found = matching_ids(session, DEFINITION.validate_python([{"kind": "bought", "product": product}]), NOW)
            assert found == [ids["phuc"]], product


def test_a_product_nobody_sells_is_refused_naming_the_condition(shop):
    engine, _ = shop
    with Session(engine) as session, pytest.raises(InvalidSegment, match=r"condition 2 \(bought\).*'XX-1'"):
        matching_ids(session, DEFINITION.validate_python(
            [{"kind": "opted_out"}, {"kind": "bought", "product": "XX-1"}]), NOW)


def test_a_name_taken_by_a_concurrent_save_is_a_conflict_not_a_server_error(shop):
    from helpdesk.core.errors import Conflict
    from helpdesk.segments.models import Segment
    from helpdesk.segments.service import _flush_named, list_segments

    engine, _ = shop
    with Session(engine) as session:
        session.add(Segment(name="VIP", definition=[{"kind": "tag", "tag": "vip"}]))
        session.commit()
        # as if the other request saved between this one's name check and its write
        with pytest.raises(Conflict, match="'VIP' already exists"):
            _flush_named(session, Segment(name="VIP", definition=[{"kind": "opted_out"}]))
    with Session(engine) as session:
        assert [(s.name, s.definition) for s in list_segments(session)] == [("VIP", [{"kind": "tag", "tag": "vip"}])]


def test_an_order_whose_lines_are_not_objects_in_a_list_is_no_purchase_of_a_product_and_breaks_nothing(shop):
    from sqlalchemy import text

    engine, ids = shop
    with engine.begin() as connection:  # as an import around the ORM could have stored it
        connection.execute(text("INSERT INTO orders (code, phone, customer_id, status, items, total_vnd, created_at) "
                                "VALUES ('DH9', '0999999999', :id, 'delivered', '{\"sku\": \"RC-18\"}', 1, :at)"),
                           {"id": ids["phuc"], "at": NOW.replace(tzinfo=None)})
        connection.execute(text("INSERT INTO orders (code, phone, customer_id, status, items, total_vnd, created_at) "
                                "VALUES ('DH10', '0999999999', :id, 'delivered', '[\"RC-18\", 7]', 1, :at)"),
                           {"id": ids["phuc"], "at": NOW.replace(tzinfo=None)})
    with Session(engine) as session:
        found = matching_ids(session, DEFINITION.validate_python([{"kind": "bought", "product": "RC-18"}]), NOW)
    assert ids["phuc"] not in found and ids["an"] in found

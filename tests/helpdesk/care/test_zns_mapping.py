"""The admin saves the ZNS template mapping: checked with Zalo at save time (a template not approved or
with parameters CareDesk cannot fill is refused then, nothing saved), used from then on instead of
CAREDESK_ZNS__TEMPLATES, and still in use after a restart."""

from __future__ import annotations

import pytest

from tests.fakes.zns_api import FakeZns, param
from tests.helpdesk.care.conftest import make_order, started
from tests.helpdesk.care.test_zns import CHECK_IN, RATING, THANK_YOU, deliver, zns_settings


@pytest.fixture
def zns():
    with FakeZns() as fake:
        fake.add_template(THANK_YOU, [param("customer_name"), param("order_code"), param("product_name", max_length=100)])
        fake.add_template(RATING, [param("customer_name"), param("order_code")])
        fake.add_template(CHECK_IN, [param("customer_name"), param("delivered_date", max_length=10)])
        fake.add_template("309999", [param("customer_name"), param("voucher_code")])
        fake.add_template("308888", [param("customer_name")], status="PENDING_REVIEW")
        fake.add_template("307777", [param("ten_khach"), param("ma_dh")])
        yield fake


async def test_a_mapping_that_cannot_work_is_refused_at_save_time_and_nothing_changes(care_settings, clock, zns):
    async for client in started(zns_settings(care_settings, zns), clock):
        admin = await client.login()
        refused = await client.put("/api/care/zns/templates", headers=admin,
                                   json={"templates": {"thank_you": "309999", "check_in": "308888"}})
        assert refused.status_code == 422
        problems = refused.json()["problems"]
        assert any("thank_you: template 309999 requires parameter 'voucher_code'" in p for p in problems)
        assert any("check_in: template 308888 is PENDING_REVIEW" in p for p in problems)
        malformed = await client.put("/api/care/zns/templates", headers=admin, json={"templates": {"thanks": "1"}})
        assert malformed.status_code == 422 and "unknown care step" in malformed.json()["problems"][0]

        listed = await client.get("/api/care/zns/templates", headers=admin)
        assert listed.json()["mapping"] == {"thank_you": THANK_YOU, "rating_request": RATING, "check_in": CHECK_IN}
        make_order(client.wiring.engine)
        await deliver(client)
        assert [sent.template_id for sent in zns.zns_sent()] == [THANK_YOU]


async def test_a_saved_mapping_is_used_instead_of_the_settings_and_survives_a_restart(care_settings, clock, zns):
    settings = zns_settings(care_settings, zns)
    async for client in started(settings, clock):
        admin = await client.login()
        saved = await client.put("/api/care/zns/templates", headers=admin, json={
            "templates": {"thank_you": "307777", "rating_request": RATING},
            "parameters": {"ten_khach": "customer_name", "ma_dh": "order_code"}})
        assert saved.status_code == 200, saved.text
        assert saved.json()["mapping"] == {"thank_you": "307777", "rating_request": RATING}
        make_order(client.wiring.engine)
        await deliver(client)
        [sent] = zns.zns_sent()
        assert sent.template_id == "307777"
        assert sent.template_data == {"ten_khach": "Nguyễn Văn An", "ma_dh": "DH200001"}

    async for client in started(settings, clock):  # the same database, a new process
        admin = await client.login()
        listed = await client.get("/api/care/zns/templates", headers=admin)
        assert listed.json()["mapping"] == {"thank_you": "307777", "rating_request": RATING}


async def test_a_mapping_is_not_saved_when_zalo_cannot_check_it(care_settings, clock, zns):
    async for client in started(zns_settings(care_settings, zns), clock):
        admin = await client.login()
        zns.stop()
        refused = await client.put("/api/care/zns/templates", headers=admin,
                                   json={"templates": {"thank_you": "307777"}})
        assert refused.status_code == 503 and "not saved" in refused.json()["detail"]
        assert client.wiring.care.zns.mapping["thank_you"] == THANK_YOU

"""The segments API, on SQLite and PostgreSQL: saving, reading, changing and deleting segments (audited),
previews of saved and unsaved definitions, the audience campaigns read, and what is refused (422 naming
the condition, 404, 409, 403 for anyone but an admin)."""

from __future__ import annotations

import asyncio

import pytest
from sqlmodel import Session, select

from helpdesk.audit.models import AuditEntry
from helpdesk.core.errors import NotFound
from helpdesk.segments.service import segment_customer_ids
from tests.helpdesk.reports.factories import make_agent

#: the issue's example: bought a rice cooker 11–12 months ago, no complaint open
RICE_COOKER = [{"kind": "bought", "product": "RC-18", "from_days_ago": 330, "to_days_ago": 365},
               {"kind": "open_complaint", "not": True}]


async def test_the_rice_cooker_segment_is_saved_previewed_changed_and_deleted(any_client, customers):
    admin = await any_client.login()
    created = await any_client.post("/api/segments", headers=admin, json={
        "name": "Nồi cơm 11–12 tháng", "description": "re-purchase voucher", "definition": RICE_COOKER})
    assert created.status_code == 201, created.text
    segment = created.json()
    assert segment["definition"] == RICE_COOKER and segment["created_by"] is not None

    preview = (await any_client.get(f"/api/segments/{segment['id']}/preview", headers=admin)).json()
    assert preview["count"] == 1
    [member] = preview["sample"]
    assert (member["id"], member["name"], member["phone"], member["channels"]) == (
        customers["an"], "An", "090****001", ["telegram"])
    assert member["last_order_at"].startswith("2026-11-11")  # the air fryer, 20 days before NOW

    listed = (await any_client.get("/api/segments", headers=admin)).json()
    assert listed["count"] == 1 and listed["data"][0]["name"] == "Nồi cơm 11–12 tháng"
    assert (await any_client.get(f"/api/segments/{segment['id']}", headers=admin)).json() == segment

    # the complaint no longer excluded: Bình joins
    changed = await any_client.put(f"/api/segments/{segment['id']}", headers=admin,
                                   json={"definition": RICE_COOKER[:1]})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == "Nồi cơm 11–12 tháng" and changed.json()["definition"] == RICE_COOKER[:1]
    preview = (await any_client.get(f"/api/segments/{segment['id']}/preview", headers=admin)).json()
    assert preview["count"] == 2 and [m["id"] for m in preview["sample"]] == sorted([customers["an"], customers["binh"]])

    def audience():
        with Session(any_client.wiring.engine) as session:
            return segment_customer_ids(session, segment["id"])

    def audited():
        with Session(any_client.wiring.engine) as session:
            return list(session.exec(select(AuditEntry.action).where(AuditEntry.entity_type == "segment")
                                     .order_by(AuditEntry.id)).all())

    assert await asyncio.to_thread(audience) == sorted([customers["an"], customers["binh"]])
    assert await asyncio.to_thread(audited) == ["segment_created", "segment_updated"]

    assert (await any_client.delete(f"/api/segments/{segment['id']}", headers=admin)).status_code == 204
    assert (await any_client.get(f"/api/segments/{segment['id']}", headers=admin)).status_code == 404
    assert (await asyncio.to_thread(audited))[-1] == "segment_deleted"


async def test_an_unsaved_definition_is_previewed_without_storing_anything(any_client, customers):
    admin = await any_client.login()
    preview = await any_client.post("/api/segments/preview", headers=admin, json={"definition": [
        {"kind": "channel", "channel": "zalo"}, {"kind": "nps", "category": "detractor", "not": True}]})
    assert preview.status_code == 200, preview.text
    assert preview.json()["count"] == 1 and preview.json()["sample"][0]["id"] == customers["dung"]
    assert preview.json()["sample"][0]["channels"] == ["zalo_bot"]
    assert (await any_client.get("/api/segments", headers=admin)).json()["count"] == 0


#: bad definitions, where the error points (after body.definition) and what it says
BAD = [
    ([{"kind": "bought_twice"}], [0], "does not match any of the expected tags"),
    ([{"kind": "bought", "from_days_ago": 400, "to_days_ago": 365}], [0, "bought"],
     "from_days_ago (400) is more than to_days_ago (365)"),
    ([{"kind": "order_count", "min": -1}], [0, "order_count", "min"], "greater than or equal to 0"),
    ([{"kind": "opted_out"}, {"kind": "total_spent", "min": 5, "max": 1}], [1, "total_spent"],
     "min (5) is more than max (1)"),
    ([{"kind": "csat"}], [0, "csat"], "give min, max or both"),
    ([{"kind": "channel", "channel": "pigeon"}], [0, "channel", "channel"], "telegram"),
    ([{"kind": "tag", "tag": "vip", "colour": "red"}], [0, "tag", "colour"], "Extra inputs are not permitted"),
    ([], [], "at least 1 item"),
]


async def test_a_bad_definition_is_refused_naming_the_condition_and_why(client):
    """Checked by the schema, before any database: on the default app only."""
    admin = await client.login()
    for definition, where, says in BAD:
        for path in ("/api/segments", "/api/segments/preview"):
            body = {"definition": definition} if path.endswith("preview") else {"name": "x", "definition": definition}
            response = await client.post(path, headers=admin, json=body)
            assert response.status_code == 422, response.text
            [error] = [e for e in response.json()["detail"] if e["loc"][:2] == ["body", "definition"]]
            assert error["loc"][2:2 + len(where)] == where and says in error["msg"], (definition, error)
    assert (await client.get("/api/segments", headers=admin)).json()["count"] == 0


async def test_a_product_the_shop_does_not_sell_is_refused_and_nothing_is_stored(any_client, customers):
    admin = await any_client.login()
    for path, extra in (("/api/segments", {"name": "x"}), ("/api/segments/preview", {})):
        response = await any_client.post(path, headers=admin, json={**extra, "definition": [
            {"kind": "opted_out", "not": True}, {"kind": "bought", "product": "Tủ lạnh"}]})
        assert response.status_code == 422
        assert response.json()["detail"] == "condition 2 (bought): no product has the SKU or name 'Tủ lạnh'"
    saved = await any_client.post("/api/segments", headers=admin, json={"name": "ok", "definition": RICE_COOKER})
    refused = await any_client.put(f"/api/segments/{saved.json()['id']}", headers=admin, json={
        "name": "renamed", "definition": [{"kind": "bought", "product": "nope"}]})
    assert refused.status_code == 422
    kept = (await any_client.get(f"/api/segments/{saved.json()['id']}", headers=admin)).json()
    assert (kept["name"], kept["definition"]) == ("ok", RICE_COOKER)


async def test_names_are_unique_and_missing_segments_are_404(any_client):
    admin = await any_client.login()
    first = await any_client.post("/api/segments", headers=admin, json={"name": "VIP", "definition": [
        {"kind": "tag", "tag": "vip"}]})
    assert first.status_code == 201
    again = await any_client.post("/api/segments", headers=admin, json={"name": "vip", "definition": [
        {"kind": "opted_out"}]})
    assert again.status_code == 409 and "already exists" in again.json()["detail"]
    for method in ("GET", "PUT", "DELETE"):
        response = await any_client.request(method, "/api/segments/987654", headers=admin,
                                            json={"name": "y"} if method == "PUT" else None)
        assert response.status_code == 404, (method, response.text)
    assert (await any_client.get("/api/segments/987654/preview", headers=admin)).status_code == 404

    def missing():
        with Session(any_client.wiring.engine) as session, pytest.raises(NotFound):
            segment_customer_ids(session, 987654)

    await asyncio.to_thread(missing)


async def test_only_admins_may_see_or_change_segments(any_client):
    admin = await any_client.login()
    anyone = [{"kind": "opted_out", "not": True}]
    saved = (await any_client.post("/api/segments", headers=admin, json={"name": "s", "definition": anyone})).json()
    for role in ("agent", "supervisor"):
        _, headers = await make_agent(any_client, admin, f"seg-{role}@test.local", role=role)
        for method, path, body in (
                ("GET", "/api/segments", None), ("POST", "/api/segments", {"name": "t", "definition": anyone}),
                ("GET", f"/api/segments/{saved['id']}", None), ("PUT", f"/api/segments/{saved['id']}", {"name": "u"}),
                ("DELETE", f"/api/segments/{saved['id']}", None), ("GET", f"/api/segments/{saved['id']}/preview", None),
                ("POST", "/api/segments/preview", {"definition": anyone})):
            response = await any_client.request(method, path, headers=headers, json=body)
            assert response.status_code == 403, (role, method, path, response.text)
    assert (await any_client.get("/api/segments", headers=admin)).json()["data"][0]["name"] == "s"


async def test_every_member_is_exported_as_csv_with_what_contacting_them_needs(any_client, customers):
    import csv
    import io

    admin = await any_client.login()
    saved = (await any_client.post("/api/segments", headers=admin, json={"name": "zalo or phone", "definition": [
        {"kind": "order_count", "min": 1}]})).json()
    exported = await any_client.get(f"/api/segments/{saved['id']}/customers.csv", headers=admin)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"] == f'attachment; filename="caredesk-segment-{saved["id"]}.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [int(r["customer_id"]) for r in rows] == sorted([customers["an"], customers["binh"], customers["dung"]])
    an = rows[0]
    assert (an["name"], an["phone"], an["phone_verified"], an["channels"], an["orders"], an["care_opted_out"]) == (
        "An", "0900000001", "1", "telegram", "2", "0")
    assert an["last_order_at"].startswith("2026-11-11") and an["email"] == "an@example.vn"  # from the order
    for path in (f"/api/segments/{saved['id']}/customers.csv", "/api/segments/987654/customers.csv"):
        _, agent = await make_agent(any_client, admin, f"csv-{len(path)}@test.local", role="supervisor")
        assert (await any_client.get(path, headers=agent)).status_code == 403
    assert (await any_client.get("/api/segments/987654/customers.csv", headers=admin)).status_code == 404

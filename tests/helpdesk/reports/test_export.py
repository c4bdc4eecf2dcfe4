"""The CSV export: a header and one row per conversation of the report, UTF-8 with Vietnamese intact,
formula-like cells made inert, the same numbers as the summary, streamed in batches."""

from __future__ import annotations

import csv
import io

from helpdesk.reports import export
from tests.helpdesk.reports.factories import PASSWORD, WEEK, Shop, build_week


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def test_one_row_per_conversation_with_what_the_summary_counts(client):
    week = await build_week(client, Shop(client.wiring.engine))
    response = await client.get("/api/reports/export.csv", headers=week.admin, params=WEEK)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="caredesk-report-2026-03-02-2026-03-08.csv"')
    assert response.text.splitlines()[0] == ",".join(export.COLUMNS)
    rows = {int(row["conversation_id"]): row for row in rows_of(response.text)}
    ids = week.ids
    assert sorted(rows) == sorted(ids[name] for name in ("c1", "c2", "c3", "c4", "c5", "c6", "c9"))

    c1 = rows[ids["c1"]]
    assert {key: c1[key] for key in ("created_at", "channel", "team", "assignee_id", "assignee", "state",
                                     "escalated", "escalated_at", "escalation_reason", "first_response_s",
                                     "resolution_s", "sla_status", "sla_breached", "contained", "csat_rating",
                                     "complaint", "complaint_reasons", "recontacted_7d")} == {
        "created_at": "2026-03-02T07:00:00+07:00", "channel": "telegram", "team": "care",
        "assignee_id": str(week.lan), "assignee": "Lan", "state": "resolved", "escalated": "1",
        "escalated_at": "2026-03-02T07:00:00+07:00", "escalation_reason": "report_defect",
        "first_response_s": "600", "resolution_s": "3600", "sla_status": "ok", "sla_breached": "0",
        "contained": "0", "csat_rating": "5", "complaint": "1", "complaint_reasons": "report_defect",
        "recontacted_7d": "1"}
    c3 = rows[ids["c3"]]
    keys = ("first_response_s", "resolution_s", "sla_breached", "complaint_reasons", "tags")
    assert [c3[key] for key in keys] == ["900", "7800", "1", "giao-tre;report_defect", "giao-tre"]
    c4 = rows[ids["c4"]]
    keys = ("escalated", "sla_breached", "contained", "first_response_s", "recontacted_7d")
    assert [c4[key] for key in keys] == ["0", "", "1", "", ""]

    # The rows add up to the summary's figures.
    report = (await client.get("/api/reports/summary", headers=week.admin, params=WEEK)).json()
    ratings = [int(r["csat_rating"]) for r in rows.values() if r["csat_rating"]]
    assert sum(r >= 4 for r in ratings) / len(ratings) == report["csat"]
    assert sum(r["contained"] == "1" for r in rows.values()) == report["counts"]["contained"]
    assert sum(r["sla_breached"] == "1" for r in rows.values()) == report["counts"]["sla_breached"]
    assert sum(r["recontacted_7d"] == "1" for r in rows.values()) == report["counts"]["recontacted_7d"]
    assert sum(r["complaint"] == "1" for r in rows.values()) == report["counts"]["complaints"]


async def test_cells_that_would_run_as_formulas_are_quoted_and_vietnamese_stays_intact(client):
    shop = Shop(client.wiring.engine)
    admin = await client.login()
    created = await client.post("/api/agents", headers=admin, json={
        "email": "lan@test.local", "name": "Nguyễn Thị Lan", "password": PASSWORD, "teams": ["+cộng"]})
    assert created.status_code == 201, created.text
    conversation = shop.conversation("2026-03-03 09:00", team="+cộng", assignee_id=created.json()["id"],
                                     state="with_agent", escalated_at="2026-03-03 09:00",
                                     escalation_reason="@SUM(A1)")
    shop.message(conversation, "2026-03-03 09:00", "Bảo hành nồi cơm")
    shop.tag(conversation, "=HYPERLINK(\"http://x\")")

    response = await client.get("/api/reports/export.csv", headers=admin, params=WEEK)
    assert response.status_code == 200, response.text
    assert response.content.decode("utf-8") == response.text
    [row] = rows_of(response.text)
    assert row["assignee"] == "Nguyễn Thị Lan"
    assert row["team"] == "'+cộng"
    assert row["escalation_reason"] == "'@SUM(A1)"
    assert row["tags"] == row["complaint_reasons"] == "'=HYPERLINK(\"http://x\")"

    excel = await client.get("/api/reports/export.csv", headers=admin, params={**WEEK, "excel": "true"})
    assert excel.content.startswith("\ufeffconversation_id,".encode())


async def test_a_large_export_streams_every_row_once(client, monkeypatch):
    monkeypatch.setattr(export, "BATCH", 3)
    shop = Shop(client.wiring.engine)
    admin = await client.login()
    made = []
    for n in range(8):
        made.append(shop.conversation(f"2026-03-04 {10 + n}:00"))
        shop.message(made[-1], f"2026-03-04 {10 + n}:00", f"câu hỏi {n}")
    response = await client.get("/api/reports/export.csv", headers=admin, params=WEEK)
    assert [int(row["conversation_id"]) for row in rows_of(response.text)] == made


async def test_the_export_follows_the_filters_and_the_callers_teams(client):
    week = await build_week(client, Shop(client.wiring.engine))
    care = await client.get("/api/reports/export.csv", headers=week.headers["care_lead"], params=WEEK)
    assert sorted(int(r["conversation_id"]) for r in rows_of(care.text)) == sorted(
        week.ids[name] for name in ("c1", "c2", "c6"))
    zalo = await client.get("/api/reports/export.csv", headers=week.admin,
                            params={**WEEK, "channel": "zalo_oa"})
    assert [int(r["conversation_id"]) for r in rows_of(zalo.text)] == [week.ids["c3"]]
    empty = await client.get("/api/reports/export.csv", headers=week.admin,
                             params={"from": "2025-01-01", "to": "2025-01-02"})
    assert empty.text == ",".join(export.COLUMNS) + "\r\n"

"""The reports API over a week of known conversations (factories.build_week), on SQLite and
PostgreSQL: every KPI worked out by hand, filters, what each role may see, bad periods, and the
OpenAPI document."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import CareDeskClient
from tests.helpdesk.reports.factories import WEEK, Shop, build_week, make_agent


async def summary(client: CareDeskClient, headers: dict[str, str], **params) -> dict:
    response = await client.get("/api/reports/summary", headers=headers, params={**WEEK, **params})
    assert response.status_code == 200, response.text
    return response.json()


async def test_the_weeks_kpis_are_the_ones_worked_out_by_hand(any_client, shop):
    week = await build_week(any_client, shop)
    report = await summary(any_client, week.admin)

    assert report["period"] == {"from": "2026-03-01T17:00:00Z", "to": "2026-03-08T17:00:00Z",
                                "timezone": "Asia/Ho_Chi_Minh"}
    assert report["counts"] == {
        "conversations": 7, "escalated": 5, "resolved": 5, "contained": 2, "first_responses": 4,
        "resolutions": 5, "sla_measured": 5, "sla_breached": 3, "csat_ratings": 4, "csat_satisfied": 2,
        "complaints": 6,
        "csat_after_complaint_ratings": 3, "recontact_base": 5, "recontacted_7d": 1}
    assert report["csat"] == 0.5
    assert report["avg_rating"] == 3.0
    assert report["rating_distribution"] == {"1": 1, "2": 1, "3": 0, "4": 1, "5": 1}
    assert report["csat_after_complaint"] == pytest.approx(2 / 3)
    assert report["avg_rating_after_complaint"] == pytest.approx(11 / 3)
    # First responses 60, 600, 900, 1200 s; resolutions 1800, 3600, 3600, 7800, 43200 s.
    assert (report["frt_median_s"], report["frt_p90_s"]) == (750, 1110)
    assert (report["resolution_median_s"], report["resolution_p90_s"]) == (3600, 29040)
    assert report["sla_compliance"] == 0.4
    assert report["containment_rate"] == pytest.approx(2 / 7)
    assert report["escalation_rate"] == pytest.approx(5 / 7)
    assert report["recontact_rate_7d"] == 0.2
    assert report["top_complaint_reasons"] == [
        {"reason": "giao-tre", "count": 2}, {"reason": "report_defect", "count": 2},
        {"reason": "complain_delivery", "count": 1}, {"reason": "complain_service", "count": 1},
        {"reason": "vip", "count": 1}]
    assert report["escalations_by_reason"] == [
        {"reason": "report_defect", "count": 2}, {"reason": "complain_delivery", "count": 1},
        {"reason": "complain_service", "count": 1}, {"reason": "customer_request", "count": 1}]
    assert report["after_delivery"] == {
        "requests_sent": 3, "requests_answered": 2, "response_rate": pytest.approx(2 / 3), "ratings": 3,
        "avg_rating": 3.0, "distribution": {"1": 1, "2": 0, "3": 1, "4": 0, "5": 1}}
    assert report["volume"]["granularity"] == "day"
    assert [(b["start"], b["conversations"], b["escalated"]) for b in report["volume"]["buckets"]] == [
        ("2026-03-02", 2, 2), ("2026-03-03", 1, 0), ("2026-03-04", 1, 1), ("2026-03-05", 0, 0),
        ("2026-03-06", 2, 1), ("2026-03-07", 1, 1), ("2026-03-08", 0, 0)]


async def test_filters_narrow_every_figure(any_client, shop):
    week = await build_week(any_client, shop)

    telegram = await summary(any_client, week.admin, channel="telegram")
    assert telegram["counts"]["conversations"] == 5  # c1, c2, c4, c5, c9
    assert telegram["filters"] == {"channel": "telegram", "team": None, "agent_id": None}
    assert (telegram["csat"], telegram["containment_rate"]) == (pytest.approx(2 / 3), pytest.approx(2 / 5))
    assert telegram["after_delivery"]["requests_sent"] == 2
    assert telegram["after_delivery"]["response_rate"] == 0.5
    assert telegram["after_delivery"]["distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}

    care = await summary(any_client, week.admin, team="care")
    assert (care["counts"]["conversations"], care["csat"]) == (3, 1.0)
    assert care["sla_compliance"] == pytest.approx(1 / 3)
    assert [r["reason"] for r in care["top_complaint_reasons"]] == [
        "complain_delivery", "complain_service", "giao-tre", "report_defect"]

    minh = await summary(any_client, week.admin, agent_id=week.minh)
    assert (minh["counts"]["conversations"], minh["csat"], minh["frt_median_s"]) == (2, 0.0, 480)


async def test_an_empty_period_gives_nulls_not_errors(client):
    admin = await client.login()
    report = await summary(client, admin, **{"from": "2025-01-01", "to": "2025-01-31"})
    for name in ("csat", "avg_rating", "csat_after_complaint", "frt_median_s", "frt_p90_s",
                 "resolution_median_s", "resolution_p90_s", "sla_compliance", "containment_rate",
                 "escalation_rate", "recontact_rate_7d"):
        assert report[name] is None, name
    assert report["top_complaint_reasons"] == [] and report["escalations_by_reason"] == []
    assert report["after_delivery"]["response_rate"] is None
    assert set(report["counts"].values()) == {0}
    assert len(report["volume"]["buckets"]) == 31


async def test_a_conversation_from_the_real_flow_counts_and_its_rating_answer_does_not(client):
    admin = await client.login()
    await client.post("/webhooks/cli", json={"sender_id": "flow-1", "message_id": "flow-1-1",
                                             "text": "cho mình gặp nhân viên"})
    await client.settle()
    listed = (await client.get("/api/conversations", headers=admin)).json()["data"]
    [conversation_id] = [c["id"] for c in listed]
    await client.post(f"/api/conversations/{conversation_id}/messages", headers=admin,
                      json={"text": "Dạ em đây ạ"})
    await client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)
    await client.settle()
    await client.post("/webhooks/cli", json={"sender_id": "flow-1", "message_id": "flow-1-2",
                                             "text": "⭐⭐⭐⭐⭐",
                                             "payload": f"rating:conversation:{conversation_id}:5"})
    await client.settle()

    response = await client.get("/api/reports/summary", headers=admin)  # the default period: the last 30 days
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"]["conversations"] == 1  # the rating answer opened a conversation of its own
    assert (report["csat"], report["avg_rating"], report["escalation_rate"]) == (1.0, 5.0, 1.0)
    assert report["frt_median_s"] is not None and report["resolution_median_s"] is not None
    assert report["recontact_rate_7d"] == 0.0
    assert report["escalations_by_reason"] == [{"reason": "customer_request", "count": 1}]
    assert len(report["volume"]["buckets"]) == 30


async def test_supervisors_see_their_teams_and_agents_see_no_reports(client):
    week = await build_week(client, Shop(client.wiring.engine))

    tech = await summary(client, week.headers["tech_lead"])
    assert (tech["counts"]["conversations"], tech["csat"]) == (2, 0.0)  # c3 and c9
    narrowed = await summary(client, week.headers["tech_lead"], agent_id=week.lan)
    assert narrowed["counts"]["conversations"] == 0
    other_team = await client.get("/api/reports/summary", headers=week.headers["tech_lead"],
                                  params={**WEEK, "team": "care"})
    assert other_team.status_code == 403
    options = await client.get("/api/reports/options", headers=week.headers["tech_lead"])
    assert options.json()["teams"] == ["technical"]

    _, teamless = await make_agent(client, week.admin, "new.lead@test.local", role="supervisor")
    assert (await summary(client, teamless))["counts"]["conversations"] == 0

    for path in ("/api/reports/summary", "/api/reports/export.csv", "/api/reports/options"):
        assert (await client.get(path, headers=week.headers["lan"])).status_code == 403, path
        anonymous = await client.get(path)
        assert anonymous.status_code == 401, path


async def test_options_list_what_an_admin_may_filter_by(client):
    week = await build_week(client, Shop(client.wiring.engine))
    options = (await client.get("/api/reports/options", headers=week.admin)).json()
    assert options["teams"] == ["care", "technical"]
    assert {"telegram", "zalo_oa", "webchat"} <= set(options["channels"])
    assert {"id": week.lan, "name": "Lan"} in options["agents"]
    assert (options["timezone"], options["role"]) == ("Asia/Ho_Chi_Minh", "admin")


@pytest.mark.parametrize(("params", "status", "phrase"), [
    ({"from": "2026-13-01"}, 422, "from must be an ISO date"),
    ({"from": "hôm qua"}, 422, "from must be an ISO date"),
    ({"to": "2026-03-32"}, 422, "to must be an ISO date"),
    ({"from": "0001-01-01"}, 422, "between the years"),
    ({"from": "2026-03-10", "to": "2026-03-01"}, 400, "is after to"),
    ({"from": "2026-03-01T10:00:00+07:00", "to": "2026-03-01T09:00:00+07:00"}, 400, "is after to"),
    ({"agent_id": "lan"}, 422, "valid integer"),
])
async def test_a_bad_period_is_refused_with_the_reason(client, params, status, phrase):
    admin = await client.login()
    response = await client.get("/api/reports/summary", headers=admin, params=params)
    assert response.status_code == status, response.text
    assert phrase in response.text


async def test_date_times_bound_the_period_exactly(client):
    shop = Shop(client.wiring.engine)
    admin = await client.login()
    inside = shop.conversation("2026-03-02 10:00")
    shop.conversation("2026-03-02 12:00")
    shop.message(inside, "2026-03-02 10:00", "alo")
    # A wall-clock time is the shop's; "+07:00" may arrive unencoded (as a space) and still be read.
    for bounds in ({"from": "2026-03-02T09:00", "to": "2026-03-02T12:00"},
                   {"from": "2026-03-02T02:00:00Z", "to": "2026-03-02T05:00:00Z"},
                   {"from": "2026-03-02T09:00:00 07:00", "to": "2026-03-02T12:00:00 07:00"}):
        response = await client.get("/api/reports/summary", headers=admin, params=bounds)
        assert response.status_code == 200, response.text
        assert response.json()["counts"]["conversations"] == 1, bounds


async def test_the_openapi_document_describes_the_reports(client):
    document = (await client.get("/openapi.json")).json()
    summary_op = document["paths"]["/api/reports/summary"]["get"]
    assert {p["name"] for p in summary_op["parameters"]} >= {"from", "to", "channel", "team", "agent_id"}
    schema = document["components"]["schemas"]["ReportSummary"]["properties"]
    assert {"csat", "avg_rating", "frt_median_s", "frt_p90_s", "resolution_median_s", "sla_compliance",
            "containment_rate", "top_complaint_reasons"} <= set(schema)
    export_op = document["paths"]["/api/reports/export.csv"]["get"]
    assert "text/csv" in export_op["responses"]["200"]["content"]
    assert "/api/reports/options" in document["paths"]


async def test_a_first_response_outside_business_hours_is_told_from_an_instant_one(any_client, shop):
    admin = await any_client.login()

    def seed() -> None:
        # Saturday 22:00, after closing (the default week: Monday to Saturday, 08:00-21:00).
        shop.conversation("2026-03-07 22:00", escalated_at="2026-03-07 22:00",
                          escalation_reason="customer_request", state="with_agent",
                          first_response_at="2026-03-07 22:10")
    await asyncio.to_thread(seed)
    report = await summary(any_client, admin)

    # No business time passed, truly: 0; the clock time says the customer waited ten minutes.
    assert (report["counts"]["first_responses"], report["frt_median_s"]) == (1, 0)
    assert report["frt_wall_median_s"] == 600

    def answered_on_monday() -> None:
        shop.conversation("2026-03-07 22:30", escalated_at="2026-03-07 22:30",
                          escalation_reason="customer_request", state="with_agent",
                          first_response_at="2026-03-09 08:30")
    await asyncio.to_thread(answered_on_monday)
    report = await summary(any_client, admin, to="2026-03-09")
    # Sunday is closed: the Monday answer counts the half hour after opening, nothing of the night.
    assert report["frt_p90_s"] == pytest.approx(1620) and report["frt_median_s"] == 900


def test_without_opening_hours_business_time_is_unknown_not_zero():
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from helpdesk.reports.service import first_response_seconds
    from helpdesk.sla.clock import BusinessClock, BusinessSchedule

    never_open = BusinessClock(BusinessSchedule(((),) * 7), ZoneInfo("Asia/Ho_Chi_Minh"))
    start, answered = datetime(2026, 3, 2, 3, 0, tzinfo=UTC), datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
    assert first_response_seconds(never_open, start, answered) is None


@pytest.mark.parametrize("params", [
    {"from": "2020-01-01"},
    {"from": "1970-01-01", "to": "2999-12-31"},
    {"from": "2021-06-15", "to": "2026-09-07"},
])
async def test_multi_year_periods_are_reported_by_year(any_client, shop, params):
    """A period of many years once answered 500: its "year" buckets were refused by the schema."""
    week = await build_week(any_client, shop)
    report = await summary(any_client, week.admin, **{"to": "2026-12-31", **params})
    assert report["volume"]["granularity"] == "year"
    years = [bucket["start"] for bucket in report["volume"]["buckets"]]
    assert years[0] == params["from"][:4] + "-01-01" and all(day.endswith("-01-01") for day in years)
    in_2026 = next(b for b in report["volume"]["buckets"] if b["start"] == "2026-01-01")
    assert in_2026["conversations"] == report["counts"]["conversations"] > 0
    exported = await any_client.get("/api/reports/export.csv", headers=week.admin,
                                    params={"to": "2026-12-31", **params})
    assert exported.status_code == 200, exported.text
    assert len(exported.text.strip().splitlines()) == report["counts"]["conversations"] + 1

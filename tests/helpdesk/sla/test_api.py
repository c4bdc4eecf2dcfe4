"""SLA policies and business hours over the API (admins only, validated, audited), and the clocks of
a conversation through the real app: escalated, answered, the customer writes again, resolved."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, select

from helpdesk.audit.models import AuditEntry
from helpdesk.sla.models import SLAOutcome
from tests.helpdesk.sla.conftest import ALWAYS_OPEN, always_open, customer_says, escalate, settle_events
from tests.helpdesk.agents.test_agent_work import make_agent

POLICY_FIELDS = {"id", "priority", "first_response_minutes", "next_response_minutes", "resolution_minutes",
                 "updated_at"}


def when(value: str | None) -> datetime | None:
    """An API timestamp as an aware datetime."""
    return datetime.fromisoformat(value) if value else None


async def test_default_policies_are_listed_with_fixed_field_names(sla_client):
    admin = await sla_client.login()
    response = await sla_client.get("/api/sla-policies", headers=admin)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 4
    assert all(set(policy) == POLICY_FIELDS for policy in body["data"])
    targets = {p["priority"]: (p["first_response_minutes"], p["next_response_minutes"], p["resolution_minutes"])
               for p in body["data"]}
    assert targets == {"urgent": (15, 15, 240), "high": (30, 30, 480), "normal": (60, 60, 1440),
                       "low": (240, 240, 4320)}


async def test_posting_a_policy_replaces_that_prioritys_targets_and_is_audited(sla_client):
    admin = await sla_client.login()
    response = await sla_client.post("/api/sla-policies", headers=admin, json={
        "priority": "high", "first_response_minutes": 20, "next_response_minutes": 25, "resolution_minutes": 300})
    assert response.status_code == 200, response.text
    assert response.json()["first_response_minutes"] == 20
    listed = (await sla_client.get("/api/sla-policies", headers=admin)).json()
    assert [p for p in listed["data"] if p["priority"] == "high"][0]["resolution_minutes"] == 300
    assert listed["count"] == 4
    with Session(sla_client.wiring.engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "sla_policy_changed")).one()
    assert entry.details["before"]["first_response_minutes"] == 30
    assert entry.details["after"]["first_response_minutes"] == 20


async def test_only_admins_change_policies_and_hours_but_agents_read_them(sla_client):
    admin = await sla_client.login()
    _, agent = await make_agent(sla_client, admin, "sla-agent@test.local")
    _, supervisor = await make_agent(sla_client, admin, "sla-sup@test.local", role="supervisor")
    policy = {"priority": "low", "first_response_minutes": 10, "next_response_minutes": 10, "resolution_minutes": 10}
    for headers in (agent, supervisor):
        assert (await sla_client.post("/api/sla-policies", headers=headers, json=policy)).status_code == 403
        assert (await sla_client.put("/api/business-hours", headers=headers, json=ALWAYS_OPEN)).status_code == 403
        assert (await sla_client.get("/api/sla-policies", headers=headers)).status_code == 200
        assert (await sla_client.get("/api/business-hours", headers=headers)).status_code == 200
    assert (await sla_client.get("/api/sla-policies")).status_code == 401


async def test_invalid_policies_are_refused_with_422(sla_client):
    admin = await sla_client.login()
    good = {"priority": "normal", "first_response_minutes": 60, "next_response_minutes": 60, "resolution_minutes": 600}
    for change in ({"priority": "critical"}, {"first_response_minutes": 0}, {"resolution_minutes": -5},
                   {"next_response_minutes": "soon"}, {"first_response_minutes": 700}, {"color": "red"}):
        response = await sla_client.post("/api/sla-policies", headers=admin, json={**good, **change})
        assert response.status_code == 422, (change, response.text)
    reason = (await sla_client.post("/api/sla-policies", headers=admin,
                                    json={**good, "first_response_minutes": 700})).json()["detail"][0]["msg"]
    assert "cannot exceed resolution_minutes" in reason


async def test_default_business_hours_are_monday_to_saturday_0800_to_2100(sla_client):
    admin = await sla_client.login()
    body = (await sla_client.get("/api/business-hours", headers=admin)).json()
    assert body["timezone"] == "Asia/Ho_Chi_Minh"
    assert body["holidays"] == []
    assert body["week"]["mon"] == [{"start": "08:00", "end": "21:00"}]
    assert body["week"]["sat"] == [{"start": "08:00", "end": "21:00"}]
    assert body["week"]["sun"] == []


async def test_putting_business_hours_replaces_the_week_and_holidays_and_is_audited(sla_client):
    admin = await sla_client.login()
    split = [{"start": "08:00", "end": "12:00"}, {"start": "13:30", "end": "17:30"}]
    schedule = {"week": {"mon": split, "tue": split, "wed": split, "thu": split, "fri": split},
                "holidays": [{"date": "2026-04-30", "name": "Giải phóng miền Nam"}, {"date": "2026-05-01"}]}
    response = await sla_client.put("/api/business-hours", headers=admin, json=schedule)
    assert response.status_code == 200, response.text
    body = (await sla_client.get("/api/business-hours", headers=admin)).json()
    assert body["week"]["fri"] == split and body["week"]["sat"] == []
    assert body["holidays"] == [{"date": "2026-04-30", "name": "Giải phóng miền Nam"},
                                {"date": "2026-05-01", "name": ""}]
    # A GET's body can be sent back as it is.
    assert (await sla_client.put("/api/business-hours", headers=admin, json=body)).status_code == 200
    with Session(sla_client.wiring.engine) as session:
        entries = session.exec(select(AuditEntry).where(AuditEntry.action == "business_hours_changed")).all()
    assert len(entries) == 2
    assert entries[0].details["before"]["sat"] == ["08:00-21:00"]
    assert entries[0].details["after"]["mon"] == ["08:00-12:00", "13:30-17:30"]


async def test_unusable_business_hours_are_refused_with_422_and_a_reason(sla_client):
    admin = await sla_client.login()
    cases = [
        ({"week": {"mon": [{"start": "08:00", "end": "12:00"}, {"start": "11:00", "end": "14:00"}]}}, "overlap"),
        ({"week": {"mon": [{"start": "17:00", "end": "08:00"}]}}, "must start before it ends"),
        ({"week": {"mon": [{"start": "8h", "end": "12:00"}]}}, "pattern"),
        ({"week": {"mon": [{"start": "08:00", "end": "25:00"}]}}, "pattern"),
        ({"week": {}}, "at least one opening period"),
        ({"week": {"someday": []}}, "Extra inputs"),
        ({"week": {"mon": [{"start": "08:00", "end": "17:00"}]},
          "holidays": [{"date": "2026-05-01"}, {"date": "2026-05-01"}]}, "given twice"),
        ({"week": {"mon": [{"start": "08:00", "end": "17:00"}]}, "holidays": [{"date": "2026-02-30"}]}, "date"),
    ]
    for body, reason in cases:
        response = await sla_client.put("/api/business-hours", headers=admin, json=body)
        assert response.status_code == 422, (body, response.text)
        assert reason in response.text, (reason, response.text)
    other_zone = await sla_client.put("/api/business-hours", headers=admin,
                                      json={**ALWAYS_OPEN, "timezone": "Europe/Berlin"})
    assert other_zone.status_code == 422 and "CAREDESK_SHOP__TIMEZONE" in other_zone.json()["detail"]
    # Nothing was saved by the refused requests.
    assert (await sla_client.get("/api/business-hours", headers=admin)).json()["week"]["sun"] == []


async def test_escalation_sets_first_response_and_resolution_due_times(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "sla-esc")
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    escalated = when(detail["escalated_at"])
    assert detail["priority"] == "normal" and detail["sla_status"] == "ok"
    assert when(detail["first_response_due_at"]) == escalated + timedelta(minutes=60)
    assert when(detail["resolution_due_at"]) == escalated + timedelta(minutes=1440)
    assert detail["next_response_due_at"] is None


async def test_escalation_outside_business_hours_starts_the_clock_at_the_next_opening(sla_client):
    from zoneinfo import ZoneInfo

    admin = await sla_client.login()
    # Open one hour a week, on a weekday other than today's: the due time cannot be within a day.
    today = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    other = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"][(today.weekday() + 3) % 7]
    response = await sla_client.put("/api/business-hours", headers=admin, json={
        "week": {other: [{"start": "10:00", "end": "11:00"}]}})
    assert response.status_code == 200
    conversation_id = await escalate(sla_client, "sla-closed")
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    due = when(detail["first_response_due_at"]).astimezone(ZoneInfo("Asia/Ho_Chi_Minh"))
    assert (due.strftime("%a").lower()[:3], due.strftime("%H:%M")) == (other, "11:00")


async def test_first_agent_reply_stops_first_response_and_pauses_resolution(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "sla-reply")
    reply = await sla_client.post(f"/api/conversations/{conversation_id}/messages", headers=admin,
                                  json={"text": "Chào anh, em xem đơn ngay ạ."})
    assert reply.status_code == 201
    await settle_events(sla_client)
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    assert detail["first_response_at"] is not None
    assert detail["next_response_due_at"] is None
    assert detail["resolution_due_at"] is None  # waiting on the customer: the clock is paused
    assert detail["sla_status"] == "ok"
    clocks = (await sla_client.get(f"/api/conversations/{conversation_id}/sla", headers=admin)).json()
    by_target = {t["target"]: t for t in clocks["timers"]}
    assert by_target["first_response"]["status"] == "stopped" and by_target["first_response"]["met"] is True
    assert by_target["resolution"]["status"] == "paused"
    assert clocks["outcome"]["first_response_met"] is True
    assert 0 <= clocks["outcome"]["first_response_seconds"] < 60


async def test_a_private_note_is_not_a_first_response(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "sla-note")
    await sla_client.post(f"/api/conversations/{conversation_id}/notes", headers=admin, json={"text": "VIP"})
    await settle_events(sla_client)
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    assert detail["resolution_due_at"] is not None
    clocks = (await sla_client.get(f"/api/conversations/{conversation_id}/sla", headers=admin)).json()
    assert {t["target"]: t["status"] for t in clocks["timers"]}["first_response"] == "running"


async def test_customer_message_after_a_reply_owes_a_next_response_and_resumes_resolution(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "sla-next")
    before = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    await sla_client.post(f"/api/conversations/{conversation_id}/messages", headers=admin, json={"text": "Dạ em đây"})
    await settle_events(sla_client)
    await customer_says(sla_client, "sla-next", "sla-next-2", "nồi bị lỗi E3")
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    clocks = (await sla_client.get(f"/api/conversations/{conversation_id}/sla", headers=admin)).json()
    messages = detail["messages"]
    replied = when([m for m in messages if m["author"] == "agent"][0]["created_at"])
    wrote = when([m for m in messages if m["author"] == "customer"][-1]["created_at"])
    assert when(detail["next_response_due_at"]) == wrote + timedelta(minutes=60)
    # Paused from the reply to the customer's message: the due time moves on by exactly that long.
    assert when(detail["resolution_due_at"]) == when(before["resolution_due_at"]) + (wrote - replied)
    assert {t["target"]: t["status"] for t in clocks["timers"]} == {
        "first_response": "stopped", "resolution": "running", "next_response": "running"}


async def test_resolving_stops_the_clocks_and_records_the_outcome(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "sla-resolve")
    await sla_client.post(f"/api/conversations/{conversation_id}/messages", headers=admin, json={"text": "Dạ"})
    await settle_events(sla_client)
    await customer_says(sla_client, "sla-resolve", "sla-resolve-2", "cảm ơn")
    assert (await sla_client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)).status_code == 200
    await settle_events(sla_client)
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    assert (detail["next_response_due_at"], detail["resolution_due_at"]) == (None, None)
    with Session(sla_client.wiring.engine) as session:
        outcome = session.exec(select(SLAOutcome).where(SLAOutcome.conversation_id == conversation_id)).one()
    assert (outcome.ended_by, outcome.first_response_met, outcome.resolution_met) == ("resolved", True, True)
    assert outcome.next_responses == 0 and outcome.next_response_breaches == 0
    assert 0 < outcome.resolution_seconds < 60
    assert outcome.resolved_at == when(detail["resolved_at"])


async def test_reopening_resumes_the_resolution_clock(sla_client):
    admin = await always_open(sla_client)
    conversation_id = await escalate(sla_client, "sla-reopen")
    await sla_client.post(f"/api/conversations/{conversation_id}/resolve", headers=admin)
    await settle_events(sla_client)
    assert (await sla_client.post(f"/api/conversations/{conversation_id}/reopen", headers=admin)).status_code == 200
    await settle_events(sla_client)
    detail = (await sla_client.get(f"/api/conversations/{conversation_id}", headers=admin)).json()
    clocks = (await sla_client.get(f"/api/conversations/{conversation_id}/sla", headers=admin)).json()
    resolution = {t["target"]: t for t in clocks["timers"]}["resolution"]
    assert resolution["status"] == "running" and resolution["consumed_seconds"] > 0
    assert detail["resolution_due_at"] is not None
    assert clocks["outcome"]["ended_by"] is None and clocks["outcome"]["cycle"] == 1


async def test_an_agent_of_another_team_cannot_read_a_conversations_clocks(sla_client):
    admin = await always_open(sla_client)
    _, outsider = await make_agent(sla_client, admin, "sla-out@test.local", teams=["technical"])
    conversation_id = await escalate(sla_client, "sla-hidden")
    assert (await sla_client.post("/api/teams", headers=admin, json={"name": "care"})).status_code == 201
    moved = await sla_client.post(f"/api/conversations/{conversation_id}/assign", headers=admin,
                                  json={"team": "care"})
    assert moved.status_code == 200, moved.text
    assert (await sla_client.get(f"/api/conversations/{conversation_id}/sla", headers=outsider)).status_code == 404

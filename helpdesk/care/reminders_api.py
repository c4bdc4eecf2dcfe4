"""Supervisors' view of how reminders from product data do (``helpdesk/care/reminder_report.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query

from helpdesk.agents.deps import CurrentSupervisor
from helpdesk.care.reminder_report import reminder_summary
from helpdesk.care.schemas import RemindersSummaryPublic
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import BadRequest

router = APIRouter(prefix="/api/care", tags=["care"])


def _moment(text: str | None, name: str, default: datetime) -> datetime:
    if text is None:
        return default
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{name} must be a date or an ISO time such as 2026-03-01, got {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@router.get("/reminders/summary", response_model=RemindersSummaryPublic, response_model_by_alias=True)
def reminders_summary(
    supervisor: CurrentSupervisor, session: SessionDep,
    from_: Annotated[str | None, Query(alias="from", max_length=40, description="start (due date), default 90 days ago")] = None,
    to: Annotated[str | None, Query(max_length=40, description="end (due date, exclusive), default now")] = None,
) -> RemindersSummaryPublic:
    """Per reminder type (maintenance, warranty_expiry): scheduled, sent, read, replied, skipped,
    cancelled and the reply rate, for reminders due in the period."""
    now = datetime.now(UTC)
    start, end = _moment(from_, "from", now - timedelta(days=90)), _moment(to, "to", now)
    if start >= end:
        raise BadRequest("from must be before to")
    return RemindersSummaryPublic(from_=start, to=end, data=reminder_summary(session, start, end))

"""Parked jobs: named jobs whose work failed at every delivery, kept for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field


class ParkedJob(SQLModel, table=True):
    """A job taken off the jobs stream after ``CAREDESK_WORKER__MAX_JOB_DELIVERIES`` deliveries whose
    work failed for a reason of its own: its name and arguments (to run it again), the last error."""

    __tablename__ = "parked_jobs"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64)
    args: dict[str, Any] = json_field()
    error: str = Field(sa_type=Text)
    attempts: int
    #: the stream entry it came from (several deliveries of one entry are parked once)
    entry_id: str = Field(max_length=64, unique=True)
    parked_at: datetime = created_at_field()

"""Parked jobs for admins: listed, run again once the cause is fixed, or discarded.

The worker parks a job (``helpdesk.jobs.streams``) when its work failed at every delivery for a
reason of its own; what it was about stays in the database, so running it again is safe.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from helpdesk.core.errors import NotFound
from helpdesk.core.types import insert_values
from helpdesk.jobs.models import ParkedJob
from helpdesk.jobs.streams import PoisonJob

_parked = ParkedJob.__table__


class ParkedJobPublic(BaseModel):
    """A parked job, as admins see it."""

    id: int
    name: str
    args: dict[str, Any]
    error: str
    attempts: int
    parked_at: datetime


class ParkedJobsPublic(BaseModel):
    """A page of parked jobs, newest first."""

    data: list[ParkedJobPublic]
    count: int


def park_job(engine: Engine, job: PoisonJob) -> None:
    """Record a poison job (once per stream entry: a second worker parking it too changes nothing)."""
    with Session(engine) as session:
        try:
            session.connection().execute(_parked.insert().values(insert_values(
                ParkedJob, name=job.name[:64], args=job.args, error=job.error, attempts=job.deliveries,
                entry_id=job.entry_id)))
            session.commit()
        except IntegrityError:
            session.rollback()


def list_parked_jobs(session: Session, *, limit: int = 100, offset: int = 0) -> ParkedJobsPublic:
    """The parked jobs, newest first, with how many there are."""
    connection = session.connection()
    count = connection.execute(select(func.count()).select_from(_parked)).scalar_one()
    rows = connection.execute(select(_parked).order_by(_parked.c.id.desc()).limit(limit).offset(offset)).all()
    return ParkedJobsPublic(count=count, data=[
        ParkedJobPublic(id=row.id, name=row.name, args=row.args, error=row.error, attempts=row.attempts,
                        parked_at=row.parked_at) for row in rows])


def take_parked_job(session: Session, job_id: int) -> tuple[str, dict[str, Any]]:
    """Remove a parked job (to run it again, or to discard it); its name and arguments."""
    row = session.connection().execute(select(_parked.c.name, _parked.c.args).where(_parked.c.id == job_id)).first()
    if row is None:
        raise NotFound(f"parked job {job_id} not found")
    session.connection().execute(delete(_parked).where(_parked.c.id == job_id))
    return row.name, dict(row.args)

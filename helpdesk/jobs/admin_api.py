"""Admin routes for parked jobs: list them, run one again, discard one."""

from __future__ import annotations

from fastapi import APIRouter, Query

from helpdesk.agents.deps import CurrentAdmin
from helpdesk.audit import service as audit
from helpdesk.core.deps import SessionDep
from helpdesk.jobs import parked
from helpdesk.jobs.deps import JobsDep
from helpdesk.jobs.parked import ParkedJobsPublic

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/parked-jobs", response_model=ParkedJobsPublic)
def list_parked_jobs(_admin: CurrentAdmin, session: SessionDep, limit: int = Query(100, ge=1, le=500),
                     offset: int = Query(0, ge=0)) -> ParkedJobsPublic:
    """Background jobs whose work failed at every delivery, newest first, with the error (admins)."""
    return parked.list_parked_jobs(session, limit=limit, offset=offset)


@router.post("/parked-jobs/{job_id}/retry", status_code=202)
def retry_parked_job(job_id: int, admin: CurrentAdmin, session: SessionDep, jobs: JobsDep) -> dict:
    """Run a parked job again (admins), e.g. once the cause of its failure is fixed."""
    name, args = parked.take_parked_job(session, job_id)
    audit.record(session, "parked_job_retried", "parked_job", job_id, actor_type="agent", actor_id=admin.id)
    session.commit()
    jobs.dispatch(name, **args)
    return {"id": job_id, "status": "queued"}


@router.delete("/parked-jobs/{job_id}", status_code=204)
def discard_parked_job(job_id: int, admin: CurrentAdmin, session: SessionDep) -> None:
    """Forget a parked job (admins)."""
    parked.take_parked_job(session, job_id)
    audit.record(session, "parked_job_discarded", "parked_job", job_id, actor_type="agent", actor_id=admin.id)
    session.commit()

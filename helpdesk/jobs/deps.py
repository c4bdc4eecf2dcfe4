"""FastAPI dependency for the job queue of the application's wiring."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from helpdesk.jobs.runner import JobQueue


async def get_jobs(connection: HTTPConnection) -> JobQueue:
    """Where this process hands background work: its job runner, or the transport to the worker process."""
    return connection.app.state.wiring.worker


JobsDep = Annotated[JobQueue, Depends(get_jobs)]

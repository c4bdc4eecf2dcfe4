"""FastAPI dependencies: the runtime, a database session, the current agent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from helpdesk.agents.models import Agent, AgentRole
from helpdesk.core.errors import Forbidden, Unauthorized

if TYPE_CHECKING:
    from helpdesk.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The application's wiring (settings, database, channels, bot)."""
    return request.app.state.runtime


RuntimeDep = Annotated["Runtime", Depends(get_runtime)]


def get_session(request: Request) -> Iterator[Session]:
    """A database session for one request, committed when the route returns without error."""
    runtime = request.app.state.runtime
    with Session(runtime.engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/auth/token")


def get_current_agent(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    """The agent whose bearer token came with the request."""
    from helpdesk.agents.service import agent_for_token

    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return agent_for_token(session, credentials.credentials)


CurrentAgent = Annotated[Agent, Depends(get_current_agent)]


def get_current_admin(agent: CurrentAgent) -> Agent:
    """The current agent, who must be an admin."""
    if agent.role != AgentRole.admin:
        raise Forbidden("admins only")
    return agent


CurrentAdmin = Annotated[Agent, Depends(get_current_admin)]

"""FastAPI dependencies for the signed-in agent: bearer token or session cookie, CSRF, roles."""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from helpdesk.agents.login import Logins
from helpdesk.agents.models import Agent, AgentRole
from helpdesk.agents.service import agent_for_token
from helpdesk.core.deps import SessionDep, SettingsDep
from helpdesk.core.errors import Forbidden, Unauthorized

_bearer = HTTPBearer(auto_error=False, description="Token from POST /api/auth/token")


SESSION_COOKIE = "caredesk_session"
CSRF_COOKIE = "caredesk_csrf"
CSRF_HEADER = "X-CSRF-Token"
#: the login form's double-submit token: a cookie the login page sets, and the form field that repeats it
LOGIN_CSRF_COOKIE = "caredesk_login_csrf"
LOGIN_CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def csrf_token_for(secret_key: str, session_token: str) -> str:
    """The CSRF token bound to a browser session (nothing to store: it is derived from the session)."""
    return hmac.new(secret_key.encode(), b"csrf:" + session_token.encode(), hashlib.sha256).hexdigest()


async def get_logins(connection: HTTPConnection) -> Logins:
    """What logging in needs (the database, the hashing threads, the login slots)."""
    return connection.app.state.wiring.logins


LoginsDep = Annotated[Logins, Depends(get_logins)]


def get_current_agent(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Agent:
    """The agent behind the request: a bearer token (API), or a session cookie plus CSRF token (browser)."""
    if credentials is not None and credentials.credentials:
        return agent_for_token(session, credentials.credentials)
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized("missing bearer token or session")
    agent = agent_for_token(session, cookie, kind="session")
    if request.method in UNSAFE_METHODS:
        # a page loaded before a secret rotation still holds a token made with the previous key
        keys = [settings.secret_key, *settings.secret_key_previous]
        given = request.headers.get(CSRF_HEADER, "")
        if not any(hmac.compare_digest(given.encode(), csrf_token_for(key.get_secret_value(), cookie).encode())
                   for key in keys):
            raise Forbidden("missing or wrong CSRF token (send the X-CSRF-Token header)")
    return agent


CurrentAgent = Annotated[Agent, Depends(get_current_agent)]


def get_current_supervisor(agent: CurrentAgent) -> Agent:
    """The current agent, who must be a supervisor or an admin."""
    if agent.role not in (AgentRole.admin, AgentRole.supervisor):
        raise Forbidden("supervisors and admins only")
    return agent


CurrentSupervisor = Annotated[Agent, Depends(get_current_supervisor)]


def get_current_admin(agent: CurrentAgent) -> Agent:
    """The current agent, who must be an admin."""
    if agent.role != AgentRole.admin:
        raise Forbidden("admins only")
    return agent


CurrentAdmin = Annotated[Agent, Depends(get_current_admin)]

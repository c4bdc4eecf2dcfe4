"""Logging in, off the event loop.

A login hashes a password (argon2 is slow on purpose: about a tenth of a second of CPU) and writes to
the database. Run on the event loop, both stall every request of the process, and on SQLite a second
login waits on the loop for a write lock that the first can only release when the loop runs again.
So a login reads and writes in worker threads, in short transactions of its own (none open while the
password is hashed), and hashes in the application's hashing threads (``Logins.hashing``): few,
at a lower CPU priority, so that a burst of logins neither takes every worker thread the other routes
need nor the event loop's CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from anyio import CapacityLimiter, to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from helpdesk.agents import service
from helpdesk.agents.models import Agent
from helpdesk.agents.schemas import AgentPublic
from helpdesk.agents.teams import team_names
from helpdesk.audit import service as audit
from helpdesk.core.errors import Unauthorized
from helpdesk.core.security import DUMMY_PASSWORD_HASH, PasswordHashing


@dataclass(frozen=True, eq=False)
class Logins:
    """What logging in needs: the database, the hashing threads, the slots that bound logins in
    progress at once (no more than there are hashing threads, so a burst cannot all pass the throttle
    before the first failure counts), and how long an issued token lives."""

    engine: Engine
    hashing: PasswordHashing
    slots: CapacityLimiter
    token_ttl_s: int


@dataclass(frozen=True)
class LoggedIn:
    """A successful login: the token to hand out (shown once, stored hashed) and who it belongs to."""

    token: str
    agent: AgentPublic


def agent_public(session: Session, agent: Agent) -> AgentPublic:
    """An agent with their teams."""
    return AgentPublic.model_validate(agent, from_attributes=True).model_copy(
        update={"teams": team_names(session, agent)})


@dataclass(frozen=True)
class _Candidate:
    """What a login needs to know before hashing, read in a short transaction of its own."""

    agent_id: int | None
    password_hash: str


def _look_up(engine: Engine, email: str, client: str) -> _Candidate:
    with Session(engine) as session:
        service.check_login_allowed(session, email, client)
        agent = service.get_agent_by_email(session, email)
        if agent is None:
            # An unknown email costs the same hash as a known one, so timing does not reveal accounts.
            return _Candidate(None, DUMMY_PASSWORD_HASH)
        return _Candidate(agent.id if agent.is_active else None, agent.password_hash)


def _conclude(engine: Engine, candidate: _Candidate, matches: bool, email: str, client: str, ttl_s: int,
              kind: str) -> LoggedIn:
    with Session(engine, expire_on_commit=False) as session:
        agent = session.get(Agent, candidate.agent_id) if matches and candidate.agent_id is not None else None
        if agent is None or not agent.is_active:
            service.record_failed_login(session, email, client)
            session.commit()
            raise Unauthorized("wrong email or password")
        token = service.issue_token(session, agent, ttl_s, kind=kind)
        service.clear_failed_logins(session, email, client)
        if kind == "session":
            audit.record(session, "agent_logged_in", "agent", agent.id, actor_type="agent", actor_id=agent.id)
        public = agent_public(session, agent)
        session.commit()
    return LoggedIn(token=token, agent=public)


async def log_in(logins: Logins, email: str, password: str, client: str, kind: str = "bearer") -> LoggedIn:
    """Check the credentials and issue a token of ``kind``; Unauthorized or TooManyRequests otherwise.

    The database work runs in worker threads, in short transactions (none is open while hashing), and
    the hash in the hashing threads; nothing of it on the event loop.
    """
    # Throttle check, hash and failure count all inside one slot: concurrent guesses cannot all pass
    # the check before the first failure is counted.
    async with logins.slots:
        candidate = await to_thread.run_sync(_look_up, logins.engine, email, client)
        matches = await logins.hashing.verify(password, candidate.password_hash)
        return await to_thread.run_sync(partial(_conclude, logins.engine, candidate, matches, email, client,
                                                logins.token_ttl_s, kind))

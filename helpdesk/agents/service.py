"""Accounts and authentication."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import Session, select

from helpdesk.agents.models import Agent, AgentRole, AuthToken, LoginAttempt
from helpdesk.agents.teams import set_teams
from helpdesk.audit import service as audit
from helpdesk.core.db import utcnow
from helpdesk.core.errors import Conflict, TooManyRequests, Unauthorized
from helpdesk.core.security import hash_password, new_token, token_digest

log = logging.getLogger(__name__)


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding spaces."""
    return email.strip().lower()


def get_agent_by_email(session: Session, email: str) -> Agent | None:
    """The agent with this email, if any."""
    return session.exec(select(Agent).where(Agent.email == normalise_email(email))).first()


def create_agent(
    session: Session,
    *,
    email: str,
    name: str,
    password: str,
    role: AgentRole = AgentRole.agent,
    team: str | None = None,
    teams: list[str] | None = None,
    capacity: int = 5,
    actor_id: int | None = None,
) -> Agent:
    """Create an account; the email must be new."""

    if get_agent_by_email(session, email) is not None:
        raise Conflict(f"an agent with email {email} already exists")
    agent = Agent(email=normalise_email(email), name=name, password_hash=hash_password(password), role=role,
                  capacity=capacity)
    session.add(agent)
    session.flush()
    set_teams(session, agent, ([team] if team else []) + list(teams or []))
    audit.record(session, "agent_created", "agent", agent.id, actor_type="agent" if actor_id else "system",
                 actor_id=actor_id, email=agent.email, role=str(role))
    return agent


def new_temporary_password() -> str:
    """A password for an invited account, shown once to the admin who hands it over."""
    return secrets.token_urlsafe(12)


def active_admin_count(session: Session) -> int:
    """How many active admin accounts there are."""
    return session.exec(select(func.count()).select_from(Agent)
                        .where(Agent.role == AgentRole.admin, Agent.is_active == True)).one()  # noqa: E712


def check_account_change(session: Session, actor: Agent, agent: Agent, *, role: str | None,
                         is_active: bool | None) -> None:
    """Refuse a change that would lock the shop out: deactivating one's own account, or leaving no
    active admin (the last one deactivated or given another role)."""
    if agent.id == actor.id and is_active is False:
        raise Conflict("you cannot deactivate your own account; ask another admin")
    loses_admin = agent.role == AgentRole.admin and agent.is_active and (
        is_active is False or (role is not None and role != AgentRole.admin))
    if loses_admin and active_admin_count(session) <= 1:
        raise Conflict("this is the last active admin: make another account admin first")


def ensure_admin(session: Session, *, email: str, password: str, name: str = "Admin") -> Agent:
    """Create the first admin account if no agent has this email yet."""
    existing = get_agent_by_email(session, email)
    if existing is not None:
        return existing
    return create_agent(session, email=email, name=name, password=password, role=AgentRole.admin)


#: failed logins to one account from one address that cost nothing; each one after makes the next wait twice as long
FREE_FAILURES_PER_ACCOUNT = 5
#: failed logins from one address, whatever the accounts, before that address waits too (spraying many accounts)
FREE_FAILURES_PER_CLIENT = 50
FIRST_DELAY_S = 15
MAX_DELAY_S = 15 * 60
#: an account's failures from an address are forgotten this long after the last one (or at a success)
ACCOUNT_FAILURE_MEMORY = timedelta(hours=24)
#: an address's failures across accounts count for this long
CLIENT_FAILURE_WINDOW = timedelta(hours=1)


def _delay_s(failures: int, free: int) -> int:
    """How long after the last failure the next try must wait: nothing until ``free``, then doubling."""
    if failures < free:
        return 0
    return min(FIRST_DELAY_S * 2 ** min(failures - free, 16), MAX_DELAY_S)


def _failures(session: Session, since: datetime, *conditions: Any) -> tuple[int, datetime | None]:
    count, last = session.exec(
        select(func.count(), func.max(LoginAttempt.created_at)).where(LoginAttempt.created_at >= since, *conditions)
    ).one()
    return count, last


def login_wait_s(session: Session, email: str, client: str, now: datetime | None = None) -> int:
    """Seconds before this address may try this account again (0: now).

    Failures are counted per (account, address), so a guesser elsewhere never locks the owner out, and
    per address across accounts with a much higher allowance. Past the allowance each failure doubles
    the wait (up to MAX_DELAY_S); a success clears the account's failures from that address.
    """
    now = now or utcnow()
    email = normalise_email(email)
    client = client[:64]
    waits = [0]
    count, last = _failures(session, now - ACCOUNT_FAILURE_MEMORY,
                            LoginAttempt.email == email, LoginAttempt.client == client)
    if last is not None:
        waits.append(_delay_s(count, FREE_FAILURES_PER_ACCOUNT) - int((now - last).total_seconds()))
    count, last = _failures(session, now - CLIENT_FAILURE_WINDOW, LoginAttempt.client == client)
    if last is not None:
        waits.append(_delay_s(count, FREE_FAILURES_PER_CLIENT) - int((now - last).total_seconds()))
    return max(waits)


def check_login_allowed(session: Session, email: str, client: str) -> None:
    """Refuse (429 with Retry-After) a try that comes before its wait is over; every refusal is logged."""
    wait = login_wait_s(session, email, client)
    if wait > 0:
        log.warning("login throttled: account %r from %s must wait %d s after repeated failures",
                    normalise_email(email), client, wait)
        raise TooManyRequests(f"too many failed logins; try again in {wait} seconds", retry_after=wait)


def record_failed_login(session: Session, email: str, client: str) -> None:
    """Count a failed login against the account and the address (and forget failures too old to count)."""
    now = utcnow()
    session.exec(delete(LoginAttempt).where(LoginAttempt.created_at < now - ACCOUNT_FAILURE_MEMORY))
    session.add(LoginAttempt(email=normalise_email(email), client=client[:64], created_at=now))
    session.flush()
    wait = login_wait_s(session, email, client, now)
    if wait > 0:
        log.warning("login locked: account %r from %s waits %d s before the next try", normalise_email(email),
                    client, wait)


def clear_failed_logins(session: Session, email: str, client: str) -> None:
    """A success: this address's failures for this account no longer count."""
    session.exec(delete(LoginAttempt).where(LoginAttempt.email == normalise_email(email),
                                            LoginAttempt.client == client[:64]))


def issue_token(session: Session, agent: Agent, ttl_s: int, kind: str = "bearer") -> str:
    """Create a token for the agent, valid for ``ttl_s`` seconds; returns the token itself."""
    token = new_token()
    session.add(
        AuthToken(token_hash=token_digest(token), agent_id=agent.id, kind=kind,
                  expires_at=utcnow() + timedelta(seconds=ttl_s))
    )
    return token


def revoke_token(session: Session, token: str) -> None:
    """End a session or invalidate a bearer token."""
    row = session.exec(select(AuthToken).where(AuthToken.token_hash == token_digest(token))).first()
    if row is not None:
        session.delete(row)


#: the event announcing that an agent's sessions were revoked (open inbox sockets re-check at once)
SESSIONS_REVOKED = "agent_sessions_revoked"


def revoke_agent_tokens(session: Session, agent_id: int) -> int:
    """End every browser session and bearer token of an agent; how many there were."""
    tokens = session.exec(select(AuthToken).where(AuthToken.agent_id == agent_id)).all()
    for token in tokens:
        session.delete(token)
    return len(tokens)


def agent_for_token(session: Session, token: str, kind: str | None = None) -> Agent:
    """The active agent a valid, unexpired token (of ``kind``, if given) belongs to, or Unauthorized."""
    row = session.exec(select(AuthToken).where(AuthToken.token_hash == token_digest(token))).first()
    if row is None or row.expires_at <= utcnow() or (kind is not None and row.kind != kind):
        raise Unauthorized("invalid or expired token")
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.is_active:
        raise Unauthorized("invalid or expired token")
    return agent

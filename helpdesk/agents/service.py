"""Accounts and authentication."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from sqlalchemy import func

from helpdesk.agents.models import Agent, AgentRole, AuthToken, LoginAttempt
from helpdesk.audit import service as audit
from helpdesk.core.db import utcnow
from helpdesk.core.errors import Conflict, TooManyRequests, Unauthorized
from helpdesk.core.security import (
    DUMMY_PASSWORD_HASH,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)


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
    from helpdesk.agents.teams import set_teams

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


def ensure_admin(session: Session, *, email: str, password: str, name: str = "Admin") -> Agent:
    """Create the first admin account if no agent has this email yet."""
    existing = get_agent_by_email(session, email)
    if existing is not None:
        return existing
    return create_agent(session, email=email, name=name, password=password, role=AgentRole.admin)


LOGIN_WINDOW = timedelta(minutes=15)
MAX_FAILED_LOGINS = 5


def check_login_rate(session: Session, email: str, client: str) -> None:
    """Refuse another try after too many failures for this email or from this client recently."""
    since = utcnow() - LOGIN_WINDOW
    recent = session.exec(
        select(func.count()).select_from(LoginAttempt).where(
            LoginAttempt.created_at >= since,
            (LoginAttempt.email == normalise_email(email)) | (LoginAttempt.client == client))
    ).one()
    if recent >= MAX_FAILED_LOGINS:
        raise TooManyRequests("too many failed logins; try again in 15 minutes", retry_after=900)


def authenticate(session: Session, email: str, password: str, client: str = "unknown") -> Agent:
    """The active agent with these credentials, or Unauthorized (failures are counted per email and client)."""
    check_login_rate(session, email, client)
    agent = get_agent_by_email(session, email)
    if agent is None:
        verify_password(password, DUMMY_PASSWORD_HASH)
    elif verify_password(password, agent.password_hash) and agent.is_active:
        return agent
    # Recorded in its own transaction: the request's session rolls back when we raise.
    with Session(session.get_bind()) as ledger:
        ledger.add(LoginAttempt(email=normalise_email(email), client=client[:64]))
        ledger.commit()
    raise Unauthorized("wrong email or password")


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


def agent_for_token(session: Session, token: str, kind: str | None = None) -> Agent:
    """The active agent a valid, unexpired token (of ``kind``, if given) belongs to, or Unauthorized."""
    row = session.exec(select(AuthToken).where(AuthToken.token_hash == token_digest(token))).first()
    if row is None or row.expires_at <= utcnow() or (kind is not None and row.kind != kind):
        raise Unauthorized("invalid or expired token")
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.is_active:
        raise Unauthorized("invalid or expired token")
    return agent

"""Accounts and authentication."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from helpdesk.agents.models import Agent, AgentRole, AuthToken
from helpdesk.audit import service as audit
from helpdesk.core.db import utcnow
from helpdesk.core.errors import Conflict, Unauthorized
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
    actor_id: int | None = None,
) -> Agent:
    """Create an account; the email must be new."""
    if get_agent_by_email(session, email) is not None:
        raise Conflict(f"an agent with email {email} already exists")
    agent = Agent(
        email=normalise_email(email), name=name, password_hash=hash_password(password), role=role, team=team
    )
    session.add(agent)
    session.flush()
    audit.record(session, "agent_created", "agent", agent.id, actor_type="agent" if actor_id else "system",
                 actor_id=actor_id, email=agent.email, role=str(role))
    return agent


def ensure_admin(session: Session, *, email: str, password: str, name: str = "Admin") -> Agent:
    """Create the first admin account if no agent has this email yet."""
    existing = get_agent_by_email(session, email)
    if existing is not None:
        return existing
    return create_agent(session, email=email, name=name, password=password, role=AgentRole.admin)


def authenticate(session: Session, email: str, password: str) -> Agent:
    """The active agent with these credentials, or Unauthorized."""
    agent = get_agent_by_email(session, email)
    if agent is None:
        verify_password(password, DUMMY_PASSWORD_HASH)
        raise Unauthorized("wrong email or password")
    if not verify_password(password, agent.password_hash) or not agent.is_active:
        raise Unauthorized("wrong email or password")
    return agent


def issue_token(session: Session, agent: Agent, ttl_s: int, kind: str = "bearer") -> str:
    """Create a token for the agent, valid for ``ttl_s`` seconds; returns the token itself."""
    token = new_token()
    session.add(
        AuthToken(token_hash=token_digest(token), agent_id=agent.id, kind=kind,
                  expires_at=utcnow() + timedelta(seconds=ttl_s))
    )
    return token


def agent_for_token(session: Session, token: str) -> Agent:
    """The active agent a valid, unexpired token belongs to, or Unauthorized."""
    row = session.exec(select(AuthToken).where(AuthToken.token_hash == token_digest(token))).first()
    if row is None or row.expires_at <= utcnow():
        raise Unauthorized("invalid or expired token")
    agent = session.get(Agent, row.agent_id)
    if agent is None or not agent.is_active:
        raise Unauthorized("invalid or expired token")
    return agent

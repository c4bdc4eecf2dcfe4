"""Agents (people who answer customers) and their login tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlmodel import Field, SQLModel

from helpdesk.core.db import UTCDateTime
from helpdesk.core.types import created_at_field


class AgentRole(StrEnum):
    """What an account may do: agents answer, supervisors oversee a team, admins run the shop."""

    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"


class Agent(SQLModel, table=True):
    """A person who logs in to the helpdesk."""

    __tablename__ = "agents"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    name: str = Field(max_length=200)
    password_hash: str = Field(max_length=255)
    role: str = Field(default=AgentRole.agent, max_length=20)
    team: str | None = Field(default=None, max_length=100, index=True)
    is_active: bool = True
    is_online: bool = False
    capacity: int = 5
    last_assigned_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)
    locale: str = Field(default="vi", max_length=8)
    created_at: datetime = created_at_field()


class AuthToken(SQLModel, table=True):
    """A bearer or session token; only its hash is stored."""

    __tablename__ = "auth_tokens"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    agent_id: int = Field(foreign_key="agents.id", index=True)
    kind: str = Field(default="bearer", max_length=20)
    created_at: datetime = created_at_field()
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)


class Team(SQLModel, table=True):
    """A group of agents that shares a queue (e.g. "care", "technical")."""

    __tablename__ = "teams"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    created_at: datetime = created_at_field()


class TeamMember(SQLModel, table=True):
    """An agent's membership of a team."""

    __tablename__ = "team_members"

    team_id: int = Field(foreign_key="teams.id", primary_key=True)
    agent_id: int = Field(foreign_key="agents.id", primary_key=True, index=True)


class LoginAttempt(SQLModel, table=True):
    """A failed login, kept briefly to slow down password guessing."""

    __tablename__ = "login_attempts"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, index=True)
    client: str = Field(max_length=64, index=True)
    created_at: datetime = created_at_field(index=True)

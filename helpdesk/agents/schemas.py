"""API shapes for agents and logins."""

from __future__ import annotations

from pydantic import BaseModel, Field

from helpdesk.agents.models import AgentRole


class AgentBase(BaseModel):
    """Fields shared by every agent shape."""

    email: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    role: AgentRole = AgentRole.agent
    team: str | None = Field(default=None, max_length=100)


class AgentCreate(AgentBase):
    """What an admin gives to create an account."""

    password: str = Field(min_length=8, max_length=200)


class AgentPublic(AgentBase):
    """An agent as the API shows it."""

    id: int
    is_active: bool
    is_online: bool


class TokenRequest(BaseModel):
    """Credentials exchanged for a bearer token."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)


class TokenPublic(BaseModel):
    """A bearer token and when it expires (seconds)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    agent: AgentPublic


__all__ = ["AgentCreate", "AgentPublic", "TokenRequest", "TokenPublic"]

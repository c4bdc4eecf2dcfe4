"""API shapes for agents, teams and logins."""

from __future__ import annotations

from pydantic import BaseModel, Field

from helpdesk.agents.models import AgentRole


class AgentBase(BaseModel):
    """Fields shared by every agent shape."""

    email: str = Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(min_length=1, max_length=200)
    role: AgentRole = AgentRole.agent


class AgentCreate(AgentBase):
    """What an admin gives to create an account."""

    #: left out: a temporary password is made and shown once in the answer (an invitation)
    password: str | None = Field(default=None, min_length=8, max_length=200)
    team: str | None = Field(default=None, max_length=100, description="one team (shorthand for teams)")
    teams: list[str] = []
    capacity: int = Field(default=5, ge=1, le=100)


class AgentUpdate(BaseModel):
    """What an admin may change on an account."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: AgentRole | None = None
    teams: list[str] | None = None
    capacity: int | None = Field(default=None, ge=1, le=100)
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=8, max_length=200)


class AgentPublic(AgentBase):
    """An agent as the API shows it."""

    id: int
    teams: list[str] = []
    capacity: int
    is_active: bool
    is_online: bool


class AgentCreated(AgentPublic):
    """A new account; ``temporary_password`` is set (and shown this once) when none was given."""

    temporary_password: str | None = None


class TeamUpdate(BaseModel):
    """A team's new name."""

    name: str = Field(min_length=1, max_length=100)


class TeamMembersUpdate(BaseModel):
    """Exactly who belongs to a team."""

    agent_ids: list[int] = Field(default=[], max_length=500)


class AgentsPublic(BaseModel):
    """A list of agents."""

    data: list[AgentPublic]
    count: int


class PresenceUpdate(BaseModel):
    """Going online (taking conversations) or offline."""

    online: bool


class TeamCreate(BaseModel):
    """A new team."""

    name: str = Field(min_length=1, max_length=100)


class TeamPublic(BaseModel):
    """A team and its members' ids."""

    id: int
    name: str
    member_ids: list[int]


class TokenRequest(BaseModel):
    """Credentials exchanged for a bearer token or a browser session."""

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=200)


class TokenPublic(BaseModel):
    """A bearer token and when it expires (seconds)."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    agent: AgentPublic


class SessionPublic(BaseModel):
    """A browser session: the agent and the CSRF token to send back in ``X-CSRF-Token``."""

    agent: AgentPublic
    csrf_token: str
    expires_in: int

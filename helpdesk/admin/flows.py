"""Admin actions that cross domains."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import Session, select

from helpdesk.agents.models import Agent, Team
from helpdesk.audit import service as audit
from helpdesk.canned.models import CannedResponse
from helpdesk.conversations.models import Conversation
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.sla.models import SLAOutcome

#: the tables that keep a team by its name (routing, visibility, canned replies, SLA reports)
_TEAM_NAME_COLUMNS = (Agent.team, Conversation.team, CannedResponse.team, SLAOutcome.team)


def rename_team(session: Session, team_id: int, name: str, actor_id: int) -> Team:
    """Give a team a new name, and carry it to every row that names the team (its conversations keep
    their team, its agents their queue); 409 when another team has the name."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} not found")
    name = name.strip()
    if name == team.name:
        return team
    if session.exec(select(Team).where(Team.name == name)).first() is not None:
        raise Conflict(f"team {name} already exists")
    old = team.name
    team.name = name
    for column in _TEAM_NAME_COLUMNS:
        session.exec(update(column.class_).where(column == old).values({column.key: name}))
    session.flush()
    audit.record(session, "team_renamed", "team", team.id, actor_type="agent", actor_id=actor_id,
                 changes={"name": f"{old} -> {name}"})
    return team

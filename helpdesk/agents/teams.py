"""Teams and who may see which conversation."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import or_
from sqlmodel import Session, select

from helpdesk.agents.models import Agent, AgentRole, Team, TeamMember


def ensure_team(session: Session, name: str) -> Team:
    """The team with this name, created if new."""
    team = session.exec(select(Team).where(Team.name == name)).first()
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def set_teams(session: Session, agent: Agent, names: list[str]) -> None:
    """Make the agent a member of exactly these teams."""
    for member in session.exec(select(TeamMember).where(TeamMember.agent_id == agent.id)).all():
        session.delete(member)
    session.flush()
    for name in dict.fromkeys(names):
        session.add(TeamMember(team_id=ensure_team(session, name).id, agent_id=agent.id))
    agent.team = names[0] if names else None
    session.flush()


def set_members(session: Session, team: Team, agent_ids: list[int]) -> list[int]:
    """Make exactly these agents the team's members; the ids of agents whose teams changed."""
    wanted = set(agent_ids)
    current = set(session.exec(select(TeamMember.agent_id).where(TeamMember.team_id == team.id)).all())
    for member in session.exec(select(TeamMember).where(TeamMember.team_id == team.id,
                                                        TeamMember.agent_id.not_in(wanted))).all():
        session.delete(member)
    for agent_id in wanted - current:
        session.add(TeamMember(team_id=team.id, agent_id=agent_id))
    session.flush()
    changed = sorted(wanted ^ current)
    for agent_id in changed:
        # ``Agent.team`` mirrors the first of the agent's teams (what routing reads)
        agent = session.get(Agent, agent_id)
        if agent is not None:
            names = team_names(session, agent)
            agent.team = names[0] if names else None
    session.flush()
    return changed


def team_names(session: Session, agent: Agent) -> list[str]:
    """The teams the agent belongs to."""
    return list(session.exec(
        select(Team.name).join(TeamMember, TeamMember.team_id == Team.id).where(TeamMember.agent_id == agent.id)
        .order_by(Team.name)
    ).all())


def visibility_filter(session: Session, agent: Agent, conversation_table, teams: Sequence[str] | None = None):
    """A SQL condition selecting the conversations this agent may see, or None for all (admins).

    Conversations without a team are everyone's; a supervisor sees all of their teams'
    conversations; an agent sees their teams' unassigned conversations and those assigned to them.
    ``teams`` are the agent's team names when the caller has read them already.
    """
    if agent.role == AgentRole.admin:
        return None
    if teams is None:
        teams = team_names(session, agent)
    return visibility_clause(agent.role, conversation_table, agent.id, teams if teams else None)


def visibility_clause(role: AgentRole, conversation_table, agent_id, teams):
    """``visibility_filter``'s condition for a role, with the agent's id and team names given as values
    or as bind parameters (so that one statement serves every agent of the role); ``teams`` is None
    for an agent without a team. None for admins, who see everything."""
    if role == AgentRole.admin:
        return None
    clauses = [conversation_table.team.is_(None), conversation_table.assignee_id == agent_id]
    if teams is not None:
        own_team = conversation_table.team.in_(teams)
        if role == AgentRole.supervisor:
            clauses.append(own_team)
        else:
            clauses.append(own_team & conversation_table.assignee_id.is_(None))
    return or_(*clauses)


def sees(agent: Agent, team: str | None, assignee_id: int | None, in_team: Callable[[], bool]) -> bool:
    """The visibility rule for one conversation (its team and assignee); ``in_team`` tells whether the
    agent belongs to its team, asked only when the answer depends on it."""
    if agent.role == AgentRole.admin or team is None or assignee_id == agent.id:
        return True
    if not in_team():
        return False
    return agent.role == AgentRole.supervisor or assignee_id is None


def may_see(session: Session, agent: Agent, conversation) -> bool:
    """Whether the agent may see (and act on) this conversation."""
    return sees(agent, conversation.team, conversation.assignee_id,
                lambda: conversation.team in team_names(session, agent))

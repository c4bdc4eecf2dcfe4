"""Routes for logging in (API tokens and browser sessions), agents, presence and teams."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import ValidationError
from sqlmodel import select

from helpdesk.agents import service
from helpdesk.agents.assignment import assign_waiting, requeue_conversations_of
from helpdesk.agents.models import Agent, Team, TeamMember
from helpdesk.agents.schemas import (
    AgentCreate,
    AgentCreated,
    AgentPublic,
    AgentsPublic,
    AgentUpdate,
    PresenceUpdate,
    SessionPublic,
    TeamCreate,
    TeamMembersUpdate,
    TeamPublic,
    TokenPublic,
    TokenRequest,
)
from helpdesk.agents.teams import ensure_team, set_members, set_teams, team_names
from helpdesk.audit import service as audit
from helpdesk.agents.login import agent_public, log_in
from helpdesk.agents.deps import (
    CSRF_COOKIE,
    CSRF_HEADER,
    LOGIN_CSRF_COOKIE,
    LOGIN_CSRF_FIELD,
    SESSION_COOKIE,
    CurrentAdmin,
    CurrentAgent,
    CurrentSupervisor,
    LoginsDep,
    csrf_token_for,
)
from helpdesk.core.deps import ClientAddress, EventsDep, SessionDep, SettingsDep
from helpdesk.core.errors import BadRequest, Conflict, Forbidden, NotFound
from helpdesk.core.security import hash_password

router = APIRouter(prefix="/api", tags=["agents"])

_CREDENTIALS_BODY = {
    "requestBody": {
        "content": {
            "application/json": {"schema": TokenRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": {"username": {"type": "string"},
                                                           "password": {"type": "string"}}}
            },
        }
    }
}


async def _credentials(request: Request, form_token_cookie: str | None = None) -> TokenRequest:
    """Accept credentials as JSON ({email, password}) or as an OAuth2 password form (username, password).

    With ``form_token_cookie`` (a browser login), a form must also carry the login form's token equal
    to that cookie: any site can post a form without asking first, but cannot read or set our cookie.
    """
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            data = await request.json()
        else:
            form = await request.form()
            if form_token_cookie is not None:
                given = str(form.get(LOGIN_CSRF_FIELD) or request.headers.get(CSRF_HEADER) or "")
                if not form_token_cookie or not hmac.compare_digest(given.encode(), form_token_cookie.encode()):
                    raise Forbidden("the login form's token is missing or wrong: reload the login page")
            data = {"email": form.get("email") or form.get("username"), "password": form.get("password")}
        if not isinstance(data, dict):
            raise BadRequest("expected a JSON object with email and password")
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("email and password are required") from exc
    except ValueError as exc:
        raise BadRequest("malformed body: expected JSON or form data with email and password") from exc


def _refuse_other_sites(request: Request) -> None:
    """Login CSRF: another site's page must not log a visitor's browser in (to an account of its choosing)."""
    fetched_from = request.headers.get("sec-fetch-site")
    if fetched_from is not None and fetched_from not in ("same-origin", "none"):
        raise Forbidden("a login from another site's page is refused")
    origin = request.headers.get("origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise Forbidden("a login from another site's page is refused")


@router.post("/auth/token", response_model=TokenPublic, openapi_extra=_CREDENTIALS_BODY)
async def login(request: Request, logins: LoginsDep, settings: SettingsDep, client: ClientAddress) -> TokenPublic:
    """Exchange an email and password for a bearer token (for API clients)."""
    credentials = await _credentials(request)
    done = await log_in(logins, credentials.email, credentials.password, client)
    return TokenPublic(access_token=done.token, expires_in=settings.token_ttl_s, agent=done.agent)


@router.post("/auth/session", response_model=SessionPublic, openapi_extra=_CREDENTIALS_BODY)
async def open_session(request: Request, response: Response, logins: LoginsDep, settings: SettingsDep,
                       client: ClientAddress) -> SessionPublic:
    """Log a browser in: an HTTP-only, SameSite session cookie, and a CSRF token for unsafe requests.

    Only from this site's pages: JSON (which another site cannot send without asking), or the login
    form with its token."""
    _refuse_other_sites(request)
    credentials = await _credentials(request, form_token_cookie=request.cookies.get(LOGIN_CSRF_COOKIE, ""))
    done = await log_in(logins, credentials.email, credentials.password, client, kind="session")
    ttl = settings.token_ttl_s
    csrf = csrf_token_for(settings.secret_key.get_secret_value(), done.token)
    secure = settings.environment == "production"
    response.set_cookie(SESSION_COOKIE, done.token, max_age=ttl, httponly=True, samesite="lax", secure=secure,
                        path="/")
    response.set_cookie(CSRF_COOKIE, csrf, max_age=ttl, httponly=False, samesite="lax", secure=secure, path="/")
    return SessionPublic(agent=done.agent, csrf_token=csrf, expires_in=ttl)


@router.post("/auth/logout", status_code=204)
def logout(request: Request, response: Response, agent: CurrentAgent, session: SessionDep) -> Response:
    """End the browser session (or revoke the bearer token used)."""
    token = request.cookies.get(SESSION_COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ")
    service.revoke_token(session, token)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/me", response_model=AgentPublic)
def read_me(agent: CurrentAgent, session: SessionDep) -> AgentPublic:
    """The logged-in agent."""
    return agent_public(session, agent)


@router.post("/me/presence", response_model=AgentPublic)
def set_presence(body: PresenceUpdate, agent: CurrentAgent, session: SessionDep, events: EventsDep) -> AgentPublic:
    """Go online (waiting conversations may be assigned to you) or offline (yours go back to the queue)."""
    if agent.is_online != body.online:
        agent.is_online = body.online
        audit.record(session, "agent_online" if body.online else "agent_offline", "agent", agent.id,
                     actor_type="agent", actor_id=agent.id)
        session.flush()
        if body.online:
            assign_waiting(session)
        else:
            requeue_conversations_of(session, agent)
        events.publish_soon("agent_presence", agent_id=agent.id, online=body.online)
    return agent_public(session, agent)


@router.get("/agents", response_model=AgentsPublic)
def list_agents(agent: CurrentSupervisor, session: SessionDep) -> AgentsPublic:
    """Every account (supervisors and admins)."""
    agents = session.exec(select(Agent).order_by(Agent.name)).all()
    return AgentsPublic(data=[agent_public(session, a) for a in agents], count=len(agents))


@router.post("/agents", response_model=AgentCreated, status_code=201)
def create_agent(body: AgentCreate, admin: CurrentAdmin, session: SessionDep) -> AgentCreated:
    """Create an agent account (admins only). Without a password, a temporary one is made and
    returned this once as ``temporary_password``, for the admin to hand to the new agent."""
    temporary = service.new_temporary_password() if body.password is None else None
    agent = service.create_agent(session, email=body.email, name=body.name, password=body.password or temporary,
                                 role=body.role, team=body.team, teams=body.teams, capacity=body.capacity,
                                 actor_id=admin.id)
    return AgentCreated(**agent_public(session, agent).model_dump(), temporary_password=temporary)


@router.patch("/agents/{agent_id}", response_model=AgentPublic)
def update_agent(agent_id: int, body: AgentUpdate, admin: CurrentAdmin, session: SessionDep, events: EventsDep,
                 background: BackgroundTasks) -> AgentPublic:
    """Change an account's role, teams, capacity, password or whether it is active (admins only).

    A new password, a deactivation or a new role ends the account's sessions and tokens: whoever held
    one logs in again, and gets the new rights (or none). 409 for deactivating one's own account or
    leaving the shop without an active admin."""
    agent = session.get(Agent, agent_id)
    if agent is None:
        raise NotFound(f"agent {agent_id} not found")
    service.check_account_change(session, admin, agent, role=body.role, is_active=body.is_active)
    changes = body.model_dump(exclude_unset=True, exclude={"password"})
    revoke = (body.password is not None or body.is_active is False
              or (body.role is not None and body.role != agent.role))
    for field in ("name", "role", "capacity", "is_active"):
        if field in changes and changes[field] is not None:
            setattr(agent, field, changes[field])
    if body.teams is not None:
        set_teams(session, agent, body.teams)
    if body.password is not None:
        agent.password_hash = hash_password(body.password)
        changes["password"] = "changed"
    if body.is_active is False:
        agent.is_online = False
        requeue_conversations_of(session, agent)
    if revoke:
        changes["sessions_revoked"] = service.revoke_agent_tokens(session, agent.id)
        # after the response, so after the commit: a socket that re-checks then finds the tokens gone
        background.add_task(events.publish, service.SESSIONS_REVOKED, agent_id=agent.id)
    audit.record(session, "agent_updated", "agent", agent.id, actor_type="agent", actor_id=admin.id,
                 changes={k: str(v) for k, v in changes.items()})
    return agent_public(session, agent)


@router.get("/teams", response_model=list[TeamPublic])
def list_teams(agent: CurrentAgent, session: SessionDep) -> list[TeamPublic]:
    """Every team with its members."""
    teams = session.exec(select(Team).order_by(Team.name)).all()
    return [TeamPublic(id=t.id, name=t.name, member_ids=list(session.exec(
        select(TeamMember.agent_id).where(TeamMember.team_id == t.id)).all())) for t in teams]


@router.post("/teams", response_model=TeamPublic, status_code=201)
def create_team(body: TeamCreate, admin: CurrentAdmin, session: SessionDep) -> TeamPublic:
    """Create a team (admins only)."""
    if session.exec(select(Team).where(Team.name == body.name)).first() is not None:
        raise Conflict(f"team {body.name} already exists")
    team = ensure_team(session, body.name)
    audit.record(session, "team_created", "team", team.id, actor_type="agent", actor_id=admin.id, name=body.name)
    return TeamPublic(id=team.id, name=team.name, member_ids=[])


def _team_public(session, team: Team) -> TeamPublic:
    return TeamPublic(id=team.id, name=team.name, member_ids=sorted(session.exec(
        select(TeamMember.agent_id).where(TeamMember.team_id == team.id)).all()))


@router.put("/teams/{team_id}/members", response_model=TeamPublic)
def replace_team_members(team_id: int, body: TeamMembersUpdate, admin: CurrentAdmin,
                         session: SessionDep) -> TeamPublic:
    """Make exactly these agents the team's members (admins only); 400 naming unknown agent ids."""
    team = session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} not found")
    wanted = set(body.agent_ids)
    known = set(session.exec(select(Agent.id).where(Agent.id.in_(wanted))).all()) if wanted else set()
    unknown = sorted(wanted - known)
    if unknown:
        raise BadRequest(f"no agent with id {', '.join(map(str, unknown))}")
    changed = set_members(session, team, sorted(wanted))
    audit.record(session, "team_members_changed", "team", team.id, actor_type="agent", actor_id=admin.id,
                 changes={"agent_ids": ",".join(map(str, changed))})
    return _team_public(session, team)

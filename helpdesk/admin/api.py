"""Admin routes that cross domains, and the admin pages (server-rendered shells the scripts fill)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from helpdesk.admin.flows import rename_team
from helpdesk.agents.deps import SESSION_COOKIE, CurrentAdmin
from helpdesk.agents.models import Agent, AgentRole, TeamMember
from helpdesk.agents.schemas import TeamPublic, TeamUpdate
from helpdesk.agents.service import agent_for_token
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import BadRequest, CareDeskError
from helpdesk.inbox.api import InboxStaticFiles, page_language, render_page, strings_in, ui_strings

STATIC_DIR = Path(__file__).resolve().parents[1] / "static" / "admin"
LANGUAGES = ("vi", "en")
#: the admin pages, in the navigation's order; canned responses are open to supervisors too
SECTIONS = ("agents", "teams", "canned", "sla", "channels", "segments", "campaigns")
SUPERVISOR_SECTIONS = frozenset({"canned"})
#: the inbox's strings the admin pages use as they are
SHARED_KEYS = ("app.inbox", "nav.logout", "nav.language", "nav.reports")

router = APIRouter(prefix="/api", tags=["admin"])
pages = APIRouter(include_in_schema=False)


@router.patch("/teams/{team_id}", response_model=TeamPublic)
def update_team(team_id: int, body: TeamUpdate, admin: CurrentAdmin, session: SessionDep) -> TeamPublic:
    """Rename a team (admins only), everywhere its name is kept; 409 if another team has the name."""
    if not body.name.strip():
        raise BadRequest("a team's name cannot be blank")
    team = rename_team(session, team_id, body.name, admin.id)
    return TeamPublic(id=team.id, name=team.name, member_ids=sorted(session.exec(
        select(TeamMember.agent_id).where(TeamMember.team_id == team.id)).all()))


def admin_strings(language: str) -> dict[str, str]:
    """The admin pages' strings in a language: their own, plus the inbox's they share."""
    shared = ui_strings(language)
    return {**{key: shared[key] for key in SHARED_KEYS if key in shared},
            **strings_in(STATIC_DIR / "i18n", language)}


def nav_strings(language: str) -> dict[str, str]:
    """The shared navigation's strings (``admin.nav.*``), for other pages that include admin/nav.html."""
    return {key: text for key, text in admin_strings(language).items() if key.startswith("admin.nav.")}


def _session_agent(request: Request, session) -> Agent | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return agent_for_token(session, token, kind="session")
    except CareDeskError:
        return None


def _translate(strings: dict[str, str]):
    def translate(key: str, **values: Any) -> str:
        text = strings.get(key, key)
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text
    return translate


def _allowed(agent: Agent, section: str) -> bool:
    if agent.role == AgentRole.admin:
        return True
    return agent.role == AgentRole.supervisor and section in SUPERVISOR_SECTIONS


def _admin_page(request: Request, session, section: str) -> Response:
    agent = _session_agent(request, session)
    if agent is None:
        return RedirectResponse(f"/inbox/login?next={quote(request.url.path, safe='/')}", status_code=303)
    language = page_language(request)
    allowed = _allowed(agent, section)
    me = {"id": agent.id, "name": agent.name, "role": agent.role}
    boot = {"lang": language, "strings": {lang: admin_strings(lang) for lang in LANGUAGES}, "agent": me,
            "section": section, "allowed": allowed}
    sections = [s for s in SECTIONS if _allowed(agent, s)]
    return render_page(request, "admin/admin.html", status_code=200 if allowed else 403,
                       at=_translate(admin_strings(language)), section=section, sections=sections,
                       allowed=allowed, boot=boot, me=me)


@pages.get("/admin")
def admin_home(request: Request, session: SessionDep) -> Response:
    """The first admin page the agent may open."""
    agent = _session_agent(request, session)
    if agent is None:
        return RedirectResponse("/inbox/login?next=/admin", status_code=303)
    first = next((s for s in SECTIONS if _allowed(agent, s)), "agents")
    return RedirectResponse(f"/admin/{first}", status_code=303)


def _register(section: str) -> None:
    @pages.get(f"/admin/{section}", name=f"admin_{section}")
    def page(request: Request, session: SessionDep) -> Response:
        return _admin_page(request, session, section)

    page.__doc__ = f"The {section} admin page."


for _section in SECTIONS:
    _register(_section)


def admin_static_files() -> InboxStaticFiles:
    """The admin pages' scripts, styles and strings, to mount at ``/admin/static``."""
    return InboxStaticFiles(directory=STATIC_DIR)

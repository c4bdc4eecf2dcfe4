"""Inbox routes: the login and inbox pages, the view queries the page calls, and the live socket.

The pages are server-rendered shells (Jinja2, autoescaped) that a small script without a build step
fills from the JSON API; ``/inbox/static`` serves that script, its styles and the UI strings.
"""

from __future__ import annotations

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Query, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from helpdesk.agents.models import Agent
from helpdesk.agents.service import agent_for_token
from helpdesk.agents.teams import may_see, team_names
from helpdesk.conversations.models import Conversation
from helpdesk.conversations.service import get_conversation_for
from helpdesk.agents.deps import LOGIN_CSRF_COOKIE, SESSION_COOKIE, CurrentAgent
from helpdesk.core.deps import EngineDep, EventsDep, SessionDep, SettingsDep
from helpdesk.core.errors import BadRequest, CareDeskError
from helpdesk.core.headers import security_headers
from helpdesk.inbox import views
from helpdesk.inbox.live import serve_live
from helpdesk.inbox.schemas import CustomerCommerce, InboxPage, InboxRows, ViewCounts

HELPDESK_DIR = Path(__file__).resolve().parents[1]
STATIC_DIR = HELPDESK_DIR / "static" / "inbox"
TEMPLATES_DIR = HELPDESK_DIR / "templates"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
#: mirrors the localStorage choice so the server renders the first paint in the agent's language
LANGUAGE_COOKIE = "caredesk_inbox_lang"
MAX_ROW_IDS = 200

router = APIRouter(tags=["inbox"])

_templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,  # customer text must never become markup
    undefined=jinja2.StrictUndefined,
)


class InboxStaticFiles(StaticFiles):
    """The inbox's scripts and styles; browsers revalidate each time, so an upgrade is seen at once."""

    def file_response(self, full_path, stat_result, scope: Scope, status_code: int = 200) -> Response:
        """The file, marked to be revalidated (cheap: the ETag answers 304 when nothing changed)."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def inbox_static_files() -> StaticFiles:
    """The ASGI app to mount at ``/inbox/static``."""
    return InboxStaticFiles(directory=STATIC_DIR)


@lru_cache(maxsize=32)
def _read_strings(path: Path, mtime_ns: int) -> dict[str, str]:
    return json.loads(path.read_text(encoding="utf-8"))


def strings_in(folder: Path, language: str) -> dict[str, str]:
    """A page's UI strings in a language, from ``folder/<language>.json`` (the file its script reads
    too), read again when the file changes."""
    path = folder / f"{language}.json"
    return _read_strings(path, path.stat().st_mtime_ns)


def ui_strings(language: str) -> dict[str, str]:
    """The inbox's UI strings of a language."""
    return strings_in(STATIC_DIR / "i18n", language)


def page_language(request: Request) -> str:
    """The agent's UI language as last chosen in the page (Vietnamese until they choose)."""
    chosen = request.cookies.get(LANGUAGE_COOKIE, "")
    return chosen if chosen in LANGUAGES else DEFAULT_LANGUAGE


def _security_headers(request: Request) -> dict[str, str]:
    # Only this server's own files and sockets: no inline script, nothing from a CDN.
    return security_headers(request.headers.get("host", ""))


def render_page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render an inbox page in the agent's language, with the security headers every page carries."""
    language = page_language(request)
    strings = ui_strings(language)

    def translate(key: str, **values: Any) -> str:
        text = strings.get(key, key)
        for name, value in values.items():
            text = text.replace("{" + name + "}", str(value))
        return text

    body = _templates.get_template(template).render(lang=language, t=translate, strings=strings, **context)
    return HTMLResponse(body, status_code=status_code, headers=_security_headers(request))


def _session_agent(request: Request, session) -> Agent | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        return agent_for_token(session, token, kind="session")
    except CareDeskError:  # expired or revoked: the page sends the agent to log in again
        return None


def _to_login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/inbox/login?next={quote(request.url.path, safe='/')}", status_code=303)


def _safe_next(target: str | None) -> str:
    """Only a path inside the inbox, the reports or the admin pages: the login page must not bounce anyone to another site."""
    inside = target and target.startswith(("/inbox", "/reports", "/admin"))
    if inside and not target.startswith("//") and "\\" not in target:
        return target
    return "/inbox"


@router.get("/inbox/login", include_in_schema=False)
def login_page(request: Request, session: SessionDep, settings: SettingsDep,
               next_path: str | None = Query(None, alias="next", max_length=500)) -> Response:
    """The login form (an agent already logged in goes straight to the inbox)."""
    target = _safe_next(next_path)
    if _session_agent(request, session) is not None:
        return RedirectResponse(target, status_code=303)
    # The form without the script posts form data, which any site can do too: the form's token,
    # repeated in a cookie only this site sets, is what tells the two apart (see agents.api).
    form_token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    page = render_page(request, "inbox/login.html", form_token=form_token,
                       boot={"next": target, "lang": page_language(request),
                             "strings": ui_strings(page_language(request))})
    page.set_cookie(LOGIN_CSRF_COOKIE, form_token, httponly=True, samesite="strict", path="/api/auth/session",
                    secure=settings.environment == "production")
    return page


def _boot(request: Request, session, agent: Agent, conversation_id: int | None, not_found: bool,
          first_row: dict | None) -> dict[str, Any]:
    language = page_language(request)
    return {
        "lang": language,
        "strings": ui_strings(language),
        "agent": {"id": agent.id, "name": agent.name, "email": agent.email, "role": agent.role,
                  "teams": team_names(session, agent)},
        "conversation_id": conversation_id,
        "conversation": first_row,
        "not_found": not_found,
    }


@router.get("/inbox", include_in_schema=False)
def inbox_page(request: Request, session: SessionDep) -> Response:
    """The inbox: views, the conversation list, and the conversation pane."""
    agent = _session_agent(request, session)
    if agent is None:
        return _to_login(request)
    return render_page(request, "inbox/inbox.html", customer_name=None, not_found=False,
                       boot=_boot(request, session, agent, None, False, None))


@router.get("/inbox/conversations/{conversation_id}", include_in_schema=False)
def conversation_page(conversation_id: int, request: Request, session: SessionDep) -> Response:
    """The inbox opened on one conversation; "not found" (404) when the agent may not see it."""
    agent = _session_agent(request, session)
    if agent is None:
        return _to_login(request)
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or not may_see(session, agent, conversation):
        # The same answer for "does not exist" and "not yours": ids reveal nothing.
        return render_page(request, "inbox/inbox.html", status_code=404, customer_name=None, not_found=True,
                           boot=_boot(request, session, agent, conversation_id, True, None))
    scope = views.scope_for(session, agent)
    [row] = views.inbox_rows(session, scope, [conversation.id], visible_only=False)  # may_see said yes
    return render_page(request, "inbox/inbox.html", customer_name=row.customer_name, not_found=False,
                       boot=_boot(request, session, agent, conversation_id, False, row.model_dump(mode="json")))


@router.get("/inbox/api/views", response_model=InboxPage, summary="A page of an inbox view")
def read_view(
    agent: CurrentAgent,
    session: SessionDep,
    view: str = Query("unassigned", pattern="^(" + "|".join(views.VIEWS) + ")$"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0),
) -> InboxPage:
    """Rows of one view (unassigned, mine, team, all, breaching, resolved) with every view's count."""
    scope = views.scope_for(session, agent)
    counts = views.view_counts(session, scope)
    rows = views.view_rows(session, scope, view, limit=limit, offset=offset)
    return InboxPage(view=view, data=rows, count=counts[view], counts=counts, now=scope.now)


@router.get("/inbox/api/counts", response_model=ViewCounts, summary="How many conversations each view holds")
def read_counts(agent: CurrentAgent, session: SessionDep) -> ViewCounts:
    """The count of every view, for the sidebar."""
    scope = views.scope_for(session, agent)
    return ViewCounts(counts=views.view_counts(session, scope), now=scope.now)


@router.get("/inbox/api/rows", response_model=InboxRows, summary="Inbox rows by conversation id")
def read_rows(agent: CurrentAgent, session: SessionDep, ids: str = Query(..., max_length=2000)) -> InboxRows:
    """Fresh rows for the conversations a live event touched (comma-separated ids)."""
    try:
        wanted = list(dict.fromkeys(int(part) for part in ids.split(",") if part.strip()))
    except ValueError as exc:
        raise BadRequest("ids must be comma-separated integers") from exc
    if len(wanted) > MAX_ROW_IDS:
        raise BadRequest(f"at most {MAX_ROW_IDS} ids at once")
    scope = views.scope_for(session, agent)
    rows = {row.id: row for row in views.inbox_rows(session, scope, wanted)}
    return InboxRows(data=[rows[i] for i in wanted if i in rows], missing=[i for i in wanted if i not in rows],
                     now=scope.now)


@router.get("/inbox/api/conversations/{conversation_id}/commerce", response_model=CustomerCommerce,
            summary="The customer's orders and warranties")
def read_commerce(conversation_id: int, agent: CurrentAgent, session: SessionDep) -> CustomerCommerce:
    """Orders and warranties of the conversation's customer (by record or verified phone), read-only."""
    conversation = get_conversation_for(session, agent, conversation_id)
    return views.customer_commerce(session, conversation)


@router.websocket("/inbox/live")
async def live(websocket: WebSocket, engine: EngineDep, events: EventsDep) -> None:
    """Live events for the logged-in agent (session cookie), filtered to what they may see."""
    await serve_live(websocket, engine, events)

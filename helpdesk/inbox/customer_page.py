"""The customer's page: everything that happened with one customer (the timeline), reached from the
inbox's customer panel and from search. A server-rendered shell that ``customer.js`` fills from
``GET /api/customers/{id}`` and ``GET /api/customers/{id}/timeline``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from helpdesk.agents.models import Agent
from helpdesk.agents.teams import team_names
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import NotFound
from helpdesk.customers.service import visible_customer
from helpdesk.inbox.api import _session_agent, _to_login, page_language, render_page, ui_strings

router = APIRouter(tags=["inbox"])


def _boot(request: Request, session: Session, agent: Agent, customer_id: int, found: bool) -> dict:
    language = page_language(request)
    return {"lang": language, "strings": ui_strings(language), "customer_id": customer_id, "found": found,
            "agent": {"id": agent.id, "name": agent.name, "role": agent.role, "teams": team_names(session, agent)}}


@router.get("/inbox/customers/{customer_id}", include_in_schema=False)
def customer_page(customer_id: int, request: Request, session: SessionDep) -> Response:
    """One customer's page; "not found" (404) alike for an unknown customer and one the agent may not
    see, so that ids reveal nothing."""
    agent = _session_agent(request, session)
    if agent is None:
        return _to_login(request)
    try:
        customer = visible_customer(session, agent, customer_id)
    except NotFound:
        return render_page(request, "inbox/customer.html", status_code=404, customer_name=None,
                           boot=_boot(request, session, agent, customer_id, False))
    if customer.id != customer_id:  # a record merged into another: its page is the one it speaks as
        return RedirectResponse(f"/inbox/customers/{customer.id}", status_code=303)
    return render_page(request, "inbox/customer.html", customer_name=customer.name,
                       boot=_boot(request, session, agent, customer.id, True))

"""Who may call the order routes: the shop's order system (by API key) or an agent (by bearer token),
and which orders an agent may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from connectors.base import secrets_match
from helpdesk.agents.models import Agent, AgentRole
from helpdesk.agents.deps import get_current_agent
from helpdesk.core.deps import SessionDep, SettingsDep
from helpdesk.core.errors import NotFound, Unauthorized
from helpdesk.customers.models import Customer
from helpdesk.customers.service import may_see_customer
from helpdesk.shop import service as shop
from helpdesk.shop.models import Order

_bearer = HTTPBearer(auto_error=False, description="Agent token from POST /api/auth/token")


@dataclass(frozen=True)
class Caller:
    """Who called: an agent (by bearer token) or the shop's order system (by API key)."""

    actor_type: str
    actor_id: int | None = None
    #: the agent, when an agent called: what they are shown is limited to the customers they may see
    agent: Agent | None = None


def order_system_or_agent(
    request: Request,
    settings: SettingsDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    x_api_key: Annotated[str | None, Header()] = None,
) -> Caller:
    """Accept ``X-Api-Key`` equal to CAREDESK_INTEGRATION__API_KEY, or an agent's bearer token."""
    if x_api_key is not None:
        # An empty configured key never matches: the integration is off until a key is set.
        if not secrets_match(settings.integration.api_key.get_secret_value(), x_api_key):
            raise Unauthorized("invalid API key")
        return Caller("integration")
    agent = get_current_agent(request=request, session=session, settings=settings, credentials=credentials)
    return Caller("agent", agent.id, agent)


CallerDep = Annotated[Caller, Depends(order_system_or_agent)]


def order_for(session: Session, caller: Caller, code: str) -> Order:
    """The order, if the caller may see it: the order system sees every order, an agent those of the
    customers they may see (the same 404 as for an unknown code, so that codes cannot be probed)."""
    order = shop.get_order(session, code)
    if caller.agent is not None and caller.agent.role != AgentRole.admin and not any(
            may_see_customer(session, caller.agent, session.get(Customer, customer_id))
            for customer_id in sorted(shop.order_customer_ids(session, order))):
        raise NotFound(f"order {code} not found")
    return order

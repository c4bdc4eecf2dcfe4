"""Routes for logging in and managing agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import ValidationError

from helpdesk.agents import service
from helpdesk.agents.schemas import AgentCreate, AgentPublic, TokenPublic, TokenRequest
from helpdesk.core.deps import CurrentAdmin, CurrentAgent, RuntimeDep, SessionDep
from helpdesk.core.errors import BadRequest

router = APIRouter(prefix="/api", tags=["agents"])


async def _token_request(request: Request) -> TokenRequest:
    """Accept credentials as JSON ({email, password}) or as an OAuth2 password form (username, password)."""
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("application/json"):
            data = await request.json()
        else:
            form = await request.form()
            data = {"email": form.get("email") or form.get("username"), "password": form.get("password")}
        if not isinstance(data, dict):
            raise BadRequest("expected a JSON object with email and password")
        return TokenRequest.model_validate(data)
    except ValidationError as exc:
        raise BadRequest("email and password are required") from exc
    except ValueError as exc:
        raise BadRequest("malformed body: expected JSON or form data with email and password") from exc


@router.post(
    "/auth/token",
    response_model=TokenPublic,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": TokenRequest.model_json_schema()},
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "properties": {"username": {"type": "string"},
                                                               "password": {"type": "string"}}}
                },
            }
        }
    },
)
async def login(request: Request, runtime: RuntimeDep, session: SessionDep) -> TokenPublic:
    """Exchange an email and password for a bearer token."""
    credentials = await _token_request(request)
    agent = service.authenticate(session, credentials.email, credentials.password)
    token = service.issue_token(session, agent, runtime.settings.token_ttl_s)
    return TokenPublic(access_token=token, expires_in=runtime.settings.token_ttl_s,
                       agent=AgentPublic.model_validate(agent, from_attributes=True))


@router.get("/me", response_model=AgentPublic)
def read_me(agent: CurrentAgent) -> AgentPublic:
    """The logged-in agent."""
    return AgentPublic.model_validate(agent, from_attributes=True)


@router.post("/agents", response_model=AgentPublic, status_code=201)
def create_agent(body: AgentCreate, admin: CurrentAdmin, session: SessionDep) -> AgentPublic:
    """Create an agent account (admins only)."""
    agent = service.create_agent(session, email=body.email, name=body.name, password=body.password,
                                 role=body.role, team=body.team, actor_id=admin.id)
    return AgentPublic.model_validate(agent, from_attributes=True)


__all__ = ["router", "Annotated"]

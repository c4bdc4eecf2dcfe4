"""Web Push routes: the server's public key, and the agent's subscriptions (one per browser)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request, Response

from helpdesk.agents.deps import CurrentAgent
from helpdesk.core.deps import SessionDep, SettingsDep
from helpdesk.core.errors import BadRequest
from helpdesk.push import service
from helpdesk.push.schemas import (
    PushSubscriptionCreate,
    PushSubscriptionPublic,
    PushSubscriptionRemove,
    PushSubscriptionsPublic,
    VapidPublicKey,
)

router = APIRouter(prefix="/api/push", tags=["web push"])


def _sender(request: Request):
    return request.app.state.wiring.push


@router.get("/vapid-public-key", response_model=VapidPublicKey)
async def read_vapid_public_key(request: Request, agent: CurrentAgent) -> VapidPublicKey:
    """The server's VAPID public key (base64url), the ``applicationServerKey`` of a browser's subscription."""
    keys = await _sender(request).keys()
    return VapidPublicKey(public_key=keys.public_key)


@router.post("/subscriptions", response_model=PushSubscriptionPublic, status_code=201)
def create_subscription(body: PushSubscriptionCreate, agent: CurrentAgent, session: SessionDep,
                        settings: SettingsDep) -> PushSubscriptionPublic:
    """Keep this browser's PushSubscription for the agent (the same endpoint again replaces it)."""
    if settings.environment == "production" and urlsplit(body.endpoint).scheme != "https":
        raise BadRequest("endpoint: a push service's URL must be https")
    return PushSubscriptionPublic.model_validate(service.subscribe(session, agent, body))


@router.get("/subscriptions", response_model=PushSubscriptionsPublic)
def list_subscriptions(agent: CurrentAgent, session: SessionDep) -> PushSubscriptionsPublic:
    """The agent's own subscriptions."""
    rows = service.subscriptions_of(session, agent)
    return PushSubscriptionsPublic(data=[PushSubscriptionPublic.model_validate(r) for r in rows], count=len(rows))


@router.delete("/subscriptions/{subscription_id}", status_code=204)
def delete_subscription(subscription_id: int, agent: CurrentAgent, session: SessionDep) -> Response:
    """Forget one of the agent's subscriptions by id (404 if it is not theirs)."""
    service.unsubscribe(session, agent, subscription_id=subscription_id)
    return Response(status_code=204)


@router.delete("/subscriptions", status_code=204)
def delete_subscription_by_endpoint(agent: CurrentAgent, session: SessionDep,
                                    body: PushSubscriptionRemove | None = None,
                                    endpoint: str | None = Query(None, min_length=10, max_length=2048)) -> Response:
    """Forget one of the agent's subscriptions by its endpoint (JSON body, or ``?endpoint=``)."""
    target = body.endpoint if body is not None else endpoint
    if not target:
        raise BadRequest("endpoint: give the subscription's endpoint (JSON body or ?endpoint=)")
    service.unsubscribe(session, agent, endpoint=target)
    return Response(status_code=204)

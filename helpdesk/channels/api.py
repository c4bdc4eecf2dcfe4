"""The webhook edge: verify, store once, acknowledge, process after answering."""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlmodel import select

from connectors.base import ChannelConnector, ConnectorError, WebhookRequest
from helpdesk.channels import edge
from helpdesk.conversations.models import Conversation, Message
from helpdesk.core.deps import RuntimeDep, SessionDep
from helpdesk.core.errors import is_infrastructure_error
from helpdesk.customers.models import ChannelIdentity

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])


def _connector_for(runtime, path_name: str) -> ChannelConnector:
    name = path_name.replace("-", "_")
    connector = runtime.connectors.get(name)
    if connector is None:
        raise HTTPException(404, f"channel {path_name!r} is not enabled on this server")
    return connector


@router.get("/webhooks/facebook", summary="Messenger's subscription handshake", response_class=PlainTextResponse)
def facebook_subscription(request: Request, runtime: RuntimeDep) -> PlainTextResponse:
    """Echo ``hub.challenge`` when ``hub.verify_token`` matches CAREDESK_FACEBOOK__VERIFY_TOKEN."""
    connector = _connector_for(runtime, "facebook")
    try:
        challenge = connector.verify_subscription(dict(request.query_params))
    except ConnectorError as exc:
        return PlainTextResponse(exc.reason, status_code=exc.status)
    return PlainTextResponse(challenge)


@router.post("/webhooks/{channel}", summary="Receive a platform webhook")
async def receive_webhook(channel: str, request: Request, runtime: RuntimeDep) -> JSONResponse:
    """Verify the request, store each event once, answer 200, and process in the background."""
    connector = _connector_for(runtime, channel)
    body = await request.body()
    webhook = WebhookRequest(headers=dict(request.headers), body=body, query=dict(request.query_params))
    try:
        await connector.verify(webhook)
    except ConnectorError as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return JSONResponse({"detail": f"malformed JSON: {exc}"}, status_code=400)
    try:
        messages = connector.parse(payload)
    except ConnectorError as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    try:
        stored = await edge.store_events(runtime, messages, payload)
    except Exception as exc:
        if not is_infrastructure_error(exc):
            raise
        # not stored: the platform must deliver it again (they all retry on a 5xx)
        log.warning("webhook %s not stored, the database is away: %s", channel, exc)
        return JSONResponse({"detail": "the database is unavailable; deliver this event again"},
                            status_code=503, headers={"Retry-After": "5"})
    for event_id, channel_name, sender_id, to_process in stored:
        if to_process:
            runtime.worker.submit_event(event_id, channel_name, sender_id)
    return JSONResponse({"ok": True, "received": len(messages), "new": len(stored)})


@router.get("/webhooks/cli/messages", summary="Replies for a terminal chat session")
def cli_messages(
    runtime: RuntimeDep,
    session: SessionDep,
    sender_id: str = Query(min_length=1, max_length=128),
    after: int = Query(0, ge=0),
) -> dict:
    """What the shop sent to this terminal chat after message id ``after`` (for `caredesk chat`)."""
    if "cli" not in runtime.connectors:
        raise HTTPException(404, "the cli channel is not enabled on this server")
    identity = session.exec(
        select(ChannelIdentity).where(ChannelIdentity.channel == "cli", ChannelIdentity.external_id == sender_id)
    ).first()
    if identity is None:
        return {"data": [], "state": None}
    rows = session.exec(
        select(Message, Conversation.state)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.identity_id == identity.id, Message.id > after, Message.direction == "out",
               Message.is_private == False)  # noqa: E712
        .order_by(Message.id)
    ).all()
    state = session.exec(
        select(Conversation.state).where(Conversation.identity_id == identity.id).order_by(Conversation.id.desc())
    ).first()
    return {
        "data": [{"id": m.id, "author": m.author, "text": m.text, "created_at": m.created_at.isoformat()}
                 for m, _ in rows],
        "state": state,
    }

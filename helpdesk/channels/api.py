"""The webhook edge: verify, store once, acknowledge, process after answering."""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Mapping

from anyio import to_thread
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from connectors.base import ChannelConnector, ConnectorError, WebhookRequest
from helpdesk.agents.models import AgentRole
from helpdesk.agents.service import agent_for_token
from helpdesk.channels.deps import ConnectorsDep, WebhookIntakeDep
from helpdesk.channels.edge import InboundEdge
from helpdesk.channels.tasks import process_event_soon
from helpdesk.conversations.models import Conversation, Message
from helpdesk.core.deps import SessionDep
from helpdesk.core.errors import Forbidden, is_infrastructure_error
from helpdesk.core.metrics import WEBHOOK_ACK_SECONDS, timed
from helpdesk.customers.models import ChannelIdentity
from helpdesk.jobs.runner import JobQueue

log = logging.getLogger(__name__)

router = APIRouter(tags=["webhooks"])


def _connector_for(connectors: Mapping[str, ChannelConnector], path_name: str) -> ChannelConnector:
    name = path_name.replace("-", "_")
    connector = connectors.get(name)
    if connector is None:
        raise HTTPException(404, f"channel {path_name!r} is not enabled on this server")
    return connector


#: headers a reverse proxy adds: behind one, a loopback peer is the proxy speaking for someone else
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


def is_local_request(request: Request) -> bool:
    """Whether the request comes straight from this machine: a loopback peer and no proxy header."""
    if any(name in request.headers for name in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False  # e.g. a Unix socket, which is how proxies usually reach the server
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _admin_token_check(session: Session, request: Request) -> None:

    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Forbidden("the cli channel answers only this machine, or an admin's bearer token")
    if agent_for_token(session, token.strip()).role != AgentRole.admin:
        raise Forbidden("the cli channel answers only this machine, or an admin's bearer token")


def require_cli_caller(request: Request, session: SessionDep) -> None:
    """The cli channel has no platform signing its requests, and anyone who could reach it could write
    and read as any customer: it answers ``caredesk chat`` on this machine, or an admin's token."""
    if not is_local_request(request):
        _admin_token_check(session, request)


async def _require_cli_caller_async(request: Request, engine: Engine) -> None:
    if is_local_request(request):
        return

    def check() -> None:
        with Session(engine) as session:
            _admin_token_check(session, request)

    await to_thread.run_sync(check)


@router.get("/webhooks/{channel}", summary="A platform's check of its webhook URL", response_class=PlainTextResponse)
def webhook_handshake(channel: str, request: Request, connectors: ConnectorsDep) -> PlainTextResponse:
    """The channel's answer to its platform's GET check (Messenger: ``hub.challenge`` when
    ``hub.verify_token`` matches CAREDESK_FACEBOOK__VERIFY_TOKEN); 405 for a channel without one."""
    connector = _connector_for(connectors, channel)
    try:
        answer = connector.webhook_handshake(dict(request.query_params))
    except ConnectorError as exc:
        headers = {"Allow": "POST"} if exc.status == 405 else None
        return PlainTextResponse(exc.reason, status_code=exc.status, headers=headers)
    return PlainTextResponse(answer)


@router.post("/webhooks/{channel}", summary="Receive a platform webhook")
async def receive_webhook(channel: str, request: Request, intake: WebhookIntakeDep) -> JSONResponse:
    """Verify the request, store each event once, answer 200, and process in the background."""
    connector = _connector_for(intake.connectors, channel)
    # labelled by the channels that exist only, so a scan of made-up paths adds no series
    with timed(WEBHOOK_ACK_SECONDS, connector.name):
        return await _receive(connector, request, intake.inbound, intake.jobs)


async def _receive(connector: ChannelConnector, request: Request, inbound: InboundEdge,
                   jobs: JobQueue) -> JSONResponse:
    channel = connector.name
    if connector.name == "cli":
        await _require_cli_caller_async(request, inbound.engine)
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
    # other domains' readers of the channel's verified events (the ZNS care's receipts and ratings, which
    # Zalo sends to the OA's webhook), registered by the composition root
    for tap in request.app.state.wiring.webhook_taps.get(channel, ()):
        await tap(payload)
    try:
        messages = connector.parse(payload)
    except ConnectorError as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status)

    try:
        stored = await inbound.store(messages, payload)
    except Exception as exc:
        if not is_infrastructure_error(exc):
            raise
        # not stored: the platform must deliver it again (they all retry on a 5xx)
        log.warning("webhook %s not stored, the database is away: %s", channel, exc)
        return JSONResponse({"detail": "the database is unavailable; deliver this event again"},
                            status_code=503, headers={"Retry-After": "5"})
    for event_id, channel_name, sender_id, to_process in stored:
        if to_process:
            process_event_soon(jobs, event_id, channel_name, sender_id)
    return JSONResponse({"ok": True, "received": len(messages), "new": len(stored)})


@router.get("/webhooks/cli/messages", summary="Replies for a terminal chat session",
            dependencies=[Depends(require_cli_caller)])
def cli_messages(
    connectors: ConnectorsDep,
    session: SessionDep,
    sender_id: str = Query(min_length=1, max_length=128),
    after: int = Query(0, ge=0),
) -> dict:
    """What the shop sent to this terminal chat after message id ``after`` (for `caredesk chat`)."""
    if "cli" not in connectors:
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

"""Web Push's domain logic: the server's VAPID keys, the agents' subscriptions, who hears of what.

No HTTP here: the routes are in ``api.py``, the sending in ``tasks.py``. Functions take a session and
leave committing to the caller.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from helpdesk.agents.models import Agent, Team, TeamMember
from helpdesk.agents.teams import sees
from helpdesk.conversations.models import HUMAN_STATES, Conversation, ConversationState, Message
from helpdesk.core.crypto import SecretBox
from helpdesk.core.db import utcnow
from helpdesk.core.errors import NotFound
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.push.models import VAPID_KEY_ROW, PushSubscription, VapidKeyPair
from helpdesk.push.schemas import PushSubscriptionCreate

#: what a push body shows of a customer's message (the payload must stay well under 4 KB)
BODY_CHARS = 140

#: the notification texts, per agent language (the inbox's own strings live in the browser)
TEXTS = {
    "vi": {"new_conversation": ("Cuộc trò chuyện mới: {name}", "{name} đang chờ nhân viên"),
           "message": ("Tin nhắn mới từ {name}", "{name} vừa nhắn cho bạn")},
    "en": {"new_conversation": ("New conversation: {name}", "{name} is waiting for an agent"),
           "message": ("New message from {name}", "{name} wrote to you")},
}


def b64url(raw: bytes) -> str:
    """Base64url without padding, as Web Push writes keys."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class VapidKeys:
    """The server's VAPID key pair: the private scalar and the public point, both base64url."""

    private_key: str
    public_key: str


def new_vapid_keys() -> VapidKeys:
    """A fresh P-256 key pair."""
    private = ec.generate_private_key(ec.SECP256R1())
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    return VapidKeys(b64url(scalar), public_key_of(b64url(scalar)))


def private_scalar(text: str) -> str:
    """A configured VAPID private key as the base64url 32-byte scalar this module keeps.

    Accepted as the tools write it: that scalar (``vapid --gen``'s applicationServerKey companion,
    web-push's ``generateVAPIDKeys``), base64url DER, or PEM (py-vapid's ``private_key.pem``).
    ValueError, saying what is expected, for anything else.
    """
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = _b64url_decode(text)
            if len(raw) == 32:
                return b64url(raw)
            key = serialization.load_der_private_key(raw, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("CAREDESK_VAPID_PRIVATE_KEY must be a P-256 private key: the 32-byte scalar or DER "
                         "in base64url, or PEM") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("CAREDESK_VAPID_PRIVATE_KEY must be a P-256 (prime256v1) key")
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))


def public_key_of(private_key: str) -> str:
    """The public point (uncompressed, base64url) of a base64url private scalar; ValueError if invalid."""
    raw = _b64url_decode(private_key)
    if len(raw) != 32:
        raise ValueError("CAREDESK_VAPID_PRIVATE_KEY must be a P-256 private key: 32 bytes, base64url")
    private = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    return b64url(private.public_key().public_bytes(serialization.Encoding.X962,
                                                    serialization.PublicFormat.UncompressedPoint))


def vapid_keys(session: Session, box: SecretBox, configured_private_key: str = "",
               configured_public_key: str = "") -> VapidKeys:
    """The server's key pair: the configured one, else the one in the database, made at the first call.

    Kept in the database so that every replica signs with the same key and a restart keeps it (the
    browsers' subscriptions are bound to the public key). Two replicas starting at once both try to
    insert the one row; the loser reads the winner's.
    """
    if configured_private_key:
        scalar = private_scalar(configured_private_key)
        keys = VapidKeys(scalar, public_key_of(scalar))
        if configured_public_key and configured_public_key.rstrip("=") != keys.public_key:
            raise ValueError("CAREDESK_VAPID_PUBLIC_KEY is not the public key of CAREDESK_VAPID_PRIVATE_KEY")
        return keys
    row = session.get(VapidKeyPair, VAPID_KEY_ROW)
    if row is None:
        keys = new_vapid_keys()
        try:
            with session.begin_nested():
                session.add(VapidKeyPair(id=VAPID_KEY_ROW, private_key=box.seal(keys.private_key),
                                         public_key=keys.public_key))
            return keys
        except IntegrityError:
            row = session.get(VapidKeyPair, VAPID_KEY_ROW, populate_existing=True)
            if row is None:
                raise
    return VapidKeys(box.open(row.private_key), row.public_key)


def reseal_vapid_key(session: Session, box: SecretBox) -> bool:
    """Seal the stored private key with the current secret key (after a rotation); whether it changed.
    ValueError if none of the keys opens it."""
    row = session.get(VapidKeyPair, VAPID_KEY_ROW)
    if row is None or box.sealed_with_current(row.private_key):
        return False
    row.private_key = box.reseal(row.private_key)
    return True


def subscribe(session: Session, agent: Agent, data: PushSubscriptionCreate) -> PushSubscription:
    """Keep the browser's subscription for the agent (the same endpoint again updates it: a browser
    belongs to whoever subscribed from it last)."""
    row = session.exec(select(PushSubscription).where(PushSubscription.endpoint == data.endpoint)).first()
    if row is None:
        row = PushSubscription(agent_id=agent.id, endpoint=data.endpoint, p256dh=data.keys.p256dh,
                               auth=data.keys.auth)
    else:
        row.agent_id, row.p256dh, row.auth, row.last_error = agent.id, data.keys.p256dh, data.keys.auth, None
        row.created_at = utcnow()
    session.add(row)
    session.flush()
    return row


def subscriptions_of(session: Session, agent: Agent) -> list[PushSubscription]:
    """The agent's subscriptions, newest first."""
    return list(session.exec(select(PushSubscription).where(PushSubscription.agent_id == agent.id)
                             .order_by(col(PushSubscription.id).desc())).all())


def unsubscribe(session: Session, agent: Agent, *, subscription_id: int | None = None,
                endpoint: str | None = None) -> None:
    """Forget one of the agent's subscriptions (by id or endpoint); NotFound if they have no such one."""
    query = select(PushSubscription).where(PushSubscription.agent_id == agent.id)
    if subscription_id is not None:
        query = query.where(PushSubscription.id == subscription_id)
    else:
        query = query.where(PushSubscription.endpoint == endpoint)
    row = session.exec(query).first()
    if row is None:
        raise NotFound("no such push subscription of yours")
    session.delete(row)


@dataclass(frozen=True)
class PushDelivery:
    """One push to send: where, with which keys, and the JSON payload."""

    subscription_id: int
    endpoint: str
    p256dh: str
    auth: str
    payload: dict[str, Any]


def _customer_name(session: Session, conversation: Conversation) -> str:
    customer = session.get(Customer, conversation.customer_id) if conversation.customer_id else None
    if customer is not None and customer.name:
        return customer.name
    identity = session.get(ChannelIdentity, conversation.identity_id) if conversation.identity_id else None
    if identity is not None and identity.display_name:
        return identity.display_name
    return f"#{conversation.id}"


def _recipients(session: Session, conversation: Conversation, kind: str) -> list[Agent]:
    """The active agents to tell, under the inbox's own visibility rule (``agents.teams.sees``)."""
    if kind == "message":
        # A customer's message goes to the agent answering them, and only to them.
        if conversation.assignee_id is None or conversation.state not in HUMAN_STATES:
            return []
        agent = session.get(Agent, conversation.assignee_id)
        return [agent] if agent is not None and agent.is_active else []
    # A new conversation in the queues: handed to someone (theirs alone), or waiting for whoever sees it.
    if conversation.assignee_id is not None:
        agent = session.get(Agent, conversation.assignee_id)
        return [agent] if agent is not None and agent.is_active else []
    if conversation.state != ConversationState.waiting_for_agent:
        return []
    members = _team_members(session, conversation.team) if conversation.team is not None else set()
    agents = session.exec(select(Agent).where(Agent.is_active == True)).all()  # noqa: E712
    return [agent for agent in agents
            if sees(agent, conversation.team, None, lambda agent=agent: agent.id in members)]


def _team_members(session: Session, team: str) -> set[int]:
    return set(session.exec(select(TeamMember.agent_id).join(Team, Team.id == TeamMember.team_id)
                            .where(Team.name == team)).all())


def deliveries_for(session: Session, conversation_id: int, kind: str,
                   message_id: int | None = None) -> list[PushDelivery]:
    """The pushes an event calls for: one per subscription of each agent to tell.

    ``kind`` is ``new_conversation`` (it entered the agents' queues) or ``message`` (a customer wrote in
    a conversation an agent is answering).
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or kind not in ("new_conversation", "message"):
        return []
    agents = {agent.id: agent for agent in _recipients(session, conversation, kind)}
    if not agents:
        return []
    subscriptions = session.exec(select(PushSubscription).where(
        col(PushSubscription.agent_id).in_(list(agents)))).all()
    if not subscriptions:
        return []
    name = _customer_name(session, conversation)
    preview = None
    if kind == "message" and message_id is not None:
        message = session.get(Message, message_id)
        if message is not None and message.conversation_id == conversation_id and not message.is_private:
            preview = (message.text or "").strip()[:BODY_CHARS] or None
    deliveries = []
    for subscription in subscriptions:
        texts = TEXTS.get(agents[subscription.agent_id].locale, TEXTS["vi"])[kind]
        payload = {"title": texts[0].format(name=name), "body": preview or texts[1].format(name=name),
                   "conversation_id": conversation_id, "url": f"/inbox/conversations/{conversation_id}",
                   "kind": kind}
        deliveries.append(PushDelivery(subscription.id, subscription.endpoint, subscription.p256dh,
                                       subscription.auth, payload))
    return deliveries


def payload_bytes(payload: dict[str, Any]) -> bytes:
    """The payload as the service worker reads it (compact JSON, UTF-8)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def record_sent(session: Session, subscription_id: int) -> None:
    """A push went through: note when, clear the last error."""
    row = session.get(PushSubscription, subscription_id)
    if row is not None:
        row.last_sent_at, row.last_error = utcnow(), None


def record_failure(session: Session, subscription_id: int, error: str) -> None:
    """A push failed for a reason that may pass: note it on the subscription."""
    row = session.get(PushSubscription, subscription_id)
    if row is not None:
        row.last_error = error[:500]


def drop_subscription(session: Session, subscription_id: int) -> None:
    """The push service says the subscription is gone (404/410): forget it."""
    row = session.get(PushSubscription, subscription_id)
    if row is not None:
        session.delete(row)

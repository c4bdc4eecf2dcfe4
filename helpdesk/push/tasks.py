"""Sending Web Push: events that should reach an agent whose inbox is closed become background jobs.

A customer's message in a conversation an agent answers, and a conversation entering the queues
(``conversation_escalated``), each dispatch the named job ``web_push`` (never a send in the webhook's
or the request's path). The job works out who may hear of it and queues one send per subscription,
each under its own runner key, so a slow or failing push service holds up nobody else.

A send encrypts the payload for the browser (aes128gcm, RFC 8291, with pywebpush's encoder) and signs
a VAPID JWT (RFC 8292, py-vapid). The push service's answer decides what follows: 2xx is done; 404 or
410 means the browser dropped the subscription, so it is deleted; 429, 5xx or no answer is tried again
with the runner's doubling pauses, up to ``MAX_ATTEMPTS``; any other refusal is logged and noted on the
subscription (trying again would be refused the same way).
"""

from __future__ import annotations

import logging
import time
import weakref
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from anyio import to_thread
from py_vapid import Vapid02
from pywebpush import WebPusher
from sqlalchemy.engine import Engine
from sqlmodel import Session

from helpdesk.core.config import Settings
from helpdesk.core.crypto import secret_box
from helpdesk.core.events import DomainEvent, EventBus
from helpdesk.jobs.runner import JobQueue, JobRunner, TryAgainLater
from helpdesk.push import service
from helpdesk.push.service import PushDelivery, VapidKeys

log = logging.getLogger(__name__)

#: the named job an event dispatches
WEB_PUSH = "web_push"
#: how long the push service keeps a push for a browser that is offline (a stale "new message" later
#: than this is noise)
PUSH_TTL_S = 12 * 3600
#: the VAPID JWT's lifetime (RFC 8292 allows at most 24 hours)
JWT_LIFETIME_S = 12 * 3600
#: sends of one push before giving up on a failure that may pass (429, 5xx, no answer)
MAX_ATTEMPTS = 5
SEND_TIMEOUT_S = 10.0

_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()


@dataclass
class _Attempts:
    count: int = 0


class PushSender:
    """Builds and sends the agents' Web Pushes (one per process that runs jobs)."""

    def __init__(self, engine: Engine, settings: Settings, http: httpx.AsyncClient | None = None):
        self.engine = engine
        self.settings = settings
        #: where the work goes, once the wiring has a job queue (None: a script; nothing is pushed)
        self.jobs: JobQueue | None = None
        self._http = http
        self._keys: VapidKeys | None = None

    # ------------------------------------------------------------------ keys

    def _load_keys(self) -> VapidKeys:
        with Session(self.engine) as session:
            keys = service.vapid_keys(session, secret_box(self.settings),
                                      self.settings.vapid_private_key.get_secret_value(),
                                      self.settings.vapid_public_key)
            session.commit()
            return keys

    async def keys(self) -> VapidKeys:
        """The server's VAPID key pair (read, or made, once per process)."""
        if self._keys is None:
            self._keys = await to_thread.run_sync(self._load_keys)
        return self._keys

    def subject(self) -> str:
        """The JWT's ``sub``: a contact for the push services' operators."""
        return self.settings.vapid_subject or f"mailto:{self.settings.admin.email}"

    # ------------------------------------------------------------------ the job

    def push_soon(self, conversation_id: int, kind: str, message_id: int | None = None) -> None:
        """Dispatch the push job for an event (callable from any thread)."""
        if self.jobs is not None:
            self.jobs.dispatch(WEB_PUSH, conversation_id=conversation_id, kind=kind, message_id=message_id)

    def _deliveries(self, conversation_id: int, kind: str, message_id: int | None) -> list[PushDelivery]:
        with Session(self.engine) as session:
            return service.deliveries_for(session, conversation_id, kind, message_id)

    async def fan_out(self, runner: JobRunner, conversation_id: int, kind: str, message_id: int | None) -> None:
        """Queue one send per subscription of each agent to tell."""
        deliveries = await to_thread.run_sync(self._deliveries, conversation_id, kind, message_id)
        for delivery in deliveries:
            runner.submit(f"push:{delivery.subscription_id}", self._send_job(delivery))

    def _send_job(self, delivery: PushDelivery):
        attempts = _Attempts()

        async def send() -> None:
            attempts.count += 1
            try:
                await self.send(delivery)
            except TryAgainLater as exc:
                if attempts.count >= MAX_ATTEMPTS:
                    log.error("giving up on a web push to subscription %s after %d attempts: %s",
                              delivery.subscription_id, attempts.count, exc)
                    return
                raise

        return send

    # ------------------------------------------------------------------ one send

    def _prepared(self, delivery: PushDelivery, keys: VapidKeys) -> tuple[dict[str, str], bytes]:
        """The encrypted body and the headers of one push (CPU work: ECDH, AES-GCM, an ECDSA signature)."""
        body = WebPusher({"endpoint": delivery.endpoint, "keys": {"p256dh": delivery.p256dh,
                                                                   "auth": delivery.auth}}).encode(
            service.payload_bytes(delivery.payload), content_encoding="aes128gcm")["body"]
        parts = urlsplit(delivery.endpoint)
        claims = {"aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + JWT_LIFETIME_S,
                  "sub": self.subject()}
        headers = Vapid02.from_string(private_key=keys.private_key).sign(claims)
        headers.update({"Content-Encoding": "aes128gcm", "Content-Type": "application/octet-stream",
                        "TTL": str(PUSH_TTL_S), "Urgency": "high"})
        return headers, body

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=SEND_TIMEOUT_S, follow_redirects=False)
        return self._http

    async def send(self, delivery: PushDelivery) -> None:
        """Send one push; TryAgainLater when it may go through later (a refusal for good is logged)."""
        keys = await self.keys()
        headers, body = await to_thread.run_sync(self._prepared, delivery, keys)
        try:
            response = await self._client().post(delivery.endpoint, content=body, headers=headers)
        except httpx.HTTPError as exc:
            await self._note(service.record_failure, delivery.subscription_id, f"{type(exc).__name__}: {exc}")
            raise TryAgainLater(f"push service unreachable: {type(exc).__name__}") from exc
        status = response.status_code
        if 200 <= status < 300:
            await self._note(service.record_sent, delivery.subscription_id)
            return
        if status in (404, 410):
            log.info("push subscription %s is gone (%d): deleted", delivery.subscription_id, status)
            await self._note(service.drop_subscription, delivery.subscription_id)
            return
        reason = f"push service answered {status}: {response.text[:200]}"
        await self._note(service.record_failure, delivery.subscription_id, reason)
        if status == 429 or status >= 500:
            raise TryAgainLater(reason)
        log.error("web push to subscription %s refused: %s", delivery.subscription_id, reason)

    async def _note(self, change, *args) -> None:
        def run() -> None:
            with Session(self.engine) as session:
                change(session, *args)
                session.commit()

        await to_thread.run_sync(run)

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None


def register_push_jobs(sender: PushSender, runner: JobRunner) -> None:
    """Have ``runner`` run the ``web_push`` job (one conversation's event at a time, in order)."""

    def handle(args: dict) -> None:
        conversation_id = int(args["conversation_id"])
        kind = str(args["kind"])
        if kind not in ("new_conversation", "message"):
            raise ValueError(f"unknown push kind {kind!r}")
        message_id = int(args["message_id"]) if args.get("message_id") is not None else None
        runner.submit(f"push-event:{conversation_id}",
                      lambda: sender.fan_out(runner, conversation_id, kind, message_id))

    runner.register(WEB_PUSH, handle)


def register_push_listeners(sender: PushSender, events: EventBus) -> None:
    """Dispatch a push job for the events that should reach an agent; idempotent per bus."""
    if events in _REGISTERED:
        return
    _REGISTERED.add(events)

    async def customer_wrote(event: DomainEvent) -> None:
        data = event.data
        if data.get("author") != "customer" or data.get("private") or data.get("conversation_id") is None:
            return
        # Only while people own the conversation: a message the bot answers reaches no agent, and one that
        # hands the conversation over is announced by its escalation.
        if not data.get("human_owned"):
            return
        sender.push_soon(int(data["conversation_id"]), "message", data.get("message_id"))

    async def entered_queue(event: DomainEvent) -> None:
        if event.data.get("conversation_id") is not None:
            sender.push_soon(int(event.data["conversation_id"]), "new_conversation")

    events.on("message_created")(customer_wrote)
    events.on("conversation_escalated")(entered_queue)

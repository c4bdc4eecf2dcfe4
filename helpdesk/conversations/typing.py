"""Showing the customer that an agent is typing, on channels that can (``ChannelConnector.typing_on``).

A typing indicator is a hint, not a message: it is forwarded at once from the serving process,
never through the outbox (which guarantees delivery, so it would retry, and a "typing" that shows
up after the reply is worse than none), never retried, and never awaited by the request that asked
for it. The inbox throttles its signals; the relay throttles them again per conversation, so that a
misbehaving client cannot make CareDesk flood a platform (and spend the shop's rate limit there).

With Redis (several app replicas behind a balancer) the throttle's marks live there, so that the
replicas together forward one "typing" per conversation per interval; without it, or while Redis is
away, in this process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.base import ChannelConnector

log = logging.getLogger(__name__)

#: at most one "typing" per conversation this often; Telegram and Zalo show it about 5 s, Messenger
#: up to 20 s, the widget 20 s, so a signal every 4 s keeps it on without gaps while the agent types
TYPING_INTERVAL_S = 4.0
#: a platform that takes longer than this to take a typing indicator has made it useless
TYPING_TIMEOUT_S = 5.0
#: conversations remembered at most; the oldest "typing" marks go first (they have long faded anyway)
MAX_TRACKED = 10_000
#: how long a shown "typing" is worth switching off (the longest a platform shows one: Messenger's 20 s)
SHOWN_FOR_S = 30.0


@dataclass(frozen=True)
class TypingKeys:
    """The Redis keys of one conversation's typing marks."""

    conversation_id: int

    @property
    def throttle(self) -> str:
        """Set while a "typing" forwarded less than an interval ago holds the next one back."""
        return f"caredesk:typing:{self.conversation_id}:throttle"

    @property
    def shown(self) -> str:
        """Set while a "typing" may still show, so that a stop has something to switch off."""
        return f"caredesk:typing:{self.conversation_id}:shown"


class TypingRelay:
    """Forwards agents' typing signals to the customers' channels, best effort and throttled."""

    def __init__(self, connectors: Mapping[str, ChannelConnector], *, interval_s: float = TYPING_INTERVAL_S,
                 timeout_s: float = TYPING_TIMEOUT_S, monotonic: Callable[[], float] = time.monotonic):
        self.connectors = connectors
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        #: the throttle's time source (a test steps it)
        self.monotonic = monotonic
        #: conversation id -> when its last "typing" was forwarded (removed when it is switched off)
        self._shown: dict[int, float] = {}
        #: each conversation's newest platform call: the next one waits for it, so that an "off" never
        #: overtakes the "on" it switches off
        self._last_call: dict[int, asyncio.Task[None]] = {}
        #: where the marks live when several replicas share them (None: this process)
        self.redis: Any = None

    def share_across_replicas(self, redis: Any) -> None:
        """Keep the throttle's marks in ``redis`` (an asyncio client), shared by every replica."""
        self.redis = redis

    async def signal(self, conversation_id: int, channel: str, recipient_id: str, typing: bool) -> bool:
        """The agent of ``conversation_id`` is typing (``typing``) or stopped: forward it to the
        customer in the background unless the conversation's throttle holds it back; whether it was
        forwarded."""
        connector = self.connectors.get(channel)
        if connector is None:
            return False
        if not await self._mark(conversation_id, typing):
            return False  # typing: one is showing already; stopped: nothing shown to hide
        if typing:
            self._call(conversation_id, channel, "typing_on", connector.typing_on, recipient_id)
        else:
            self._call(conversation_id, channel, "typing_off", connector.typing_off, recipient_id)
        return True

    async def reply_sent(self, conversation_id: int, channel: str, recipient_id: str) -> None:
        """The agent sent their reply: hide the indicator if one is showing."""
        await self.signal(conversation_id, channel, recipient_id, False)

    async def _mark(self, conversation_id: int, typing: bool) -> bool:
        """Record the signal in the throttle's marks; whether it goes on to the customer."""
        if self.redis is not None:
            try:
                return await self._shared_mark(TypingKeys(conversation_id), typing)
            except Exception as exc:  # Redis away: this process's marks, rather than no indicator
                log.warning("typing marks fall back to this process (Redis: %s)", exc)
        return self._local_mark(conversation_id, typing)

    async def _shared_mark(self, keys: TypingKeys, typing: bool) -> bool:
        if typing:
            if not await self.redis.set(keys.throttle, "1", nx=True, px=int(self.interval_s * 1000)):
                return False
            await self.redis.set(keys.shown, "1", px=int(SHOWN_FOR_S * 1000))
            return True
        # the throttle goes too: typing again after a stop shows at once
        return bool(await self.redis.delete(keys.shown, keys.throttle))

    def _local_mark(self, conversation_id: int, typing: bool) -> bool:
        now = self.monotonic()
        shown_at = self._shown.get(conversation_id)
        if typing:
            if shown_at is not None and now - shown_at < self.interval_s:
                return False
            self._shown.pop(conversation_id, None)  # re-inserted last: the dict stays oldest-first
            self._shown[conversation_id] = now
            self._forget_oldest()
            return True
        self._shown.pop(conversation_id, None)
        return shown_at is not None and now - shown_at < SHOWN_FOR_S

    def _forget_oldest(self) -> None:
        while len(self._shown) > MAX_TRACKED:
            del self._shown[next(iter(self._shown))]

    def _call(self, conversation_id: int, channel: str, action: str,
              send: Callable[[str], Coroutine[Any, Any, None]], recipient_id: str) -> None:
        before = self._last_call.get(conversation_id)

        async def call() -> None:
            if before is not None and not before.done():
                await asyncio.wait({before})
            try:
                await asyncio.wait_for(send(recipient_id), self.timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # best effort: the customer simply sees no indicator
                log.warning("could not show %s on %s to the customer of conversation %s: %s", action, channel,
                            conversation_id, getattr(exc, "reason", None) or exc)
            finally:
                if self._last_call.get(conversation_id) is task:
                    del self._last_call[conversation_id]

        task = asyncio.get_running_loop().create_task(call(), name=f"{action}:{conversation_id}")
        self._last_call[conversation_id] = task

    async def wait_idle(self) -> None:
        """Wait for the platform calls under way (tests, and a graceful stop)."""
        while pending := {task for task in self._last_call.values() if not task.done()}:
            await asyncio.wait(pending)

    async def close(self) -> None:
        """Stop: calls still under way are abandoned (their indicators fade by themselves)."""
        for task in list(self._last_call.values()):
            task.cancel()
        if self._last_call:
            await asyncio.wait(set(self._last_call.values()))
        self._last_call.clear()
        self._shown.clear()

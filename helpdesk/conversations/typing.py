"""Showing the customer that an agent is typing, on channels that can (``ChannelConnector.typing_on``).

A typing indicator is a hint, not a message: it is forwarded at once from the serving process,
never through the outbox (which guarantees delivery, so it would retry, and a "typing" that shows
up after the reply is worse than none), never retried, and never awaited by the request that asked
for it. The inbox throttles its signals; the relay throttles them again per conversation, so that a
misbehaving client cannot make CareDesk flood a platform (and spend the shop's rate limit there).

The throttle lives in this process: with several app replicas behind a balancer, each forwards at
most one "typing" per conversation per interval, which the platforms take in their stride.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
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

    def signal(self, conversation_id: int, channel: str, recipient_id: str, typing: bool) -> bool:
        """The agent of ``conversation_id`` is typing (``typing``) or stopped: forward it to the
        customer in the background unless the conversation's throttle holds it back; whether it was
        forwarded."""
        connector = self.connectors.get(channel)
        if connector is None:
            return False
        now = self.monotonic()
        if typing:
            shown_at = self._shown.get(conversation_id)
            if shown_at is not None and now - shown_at < self.interval_s:
                return False
            self._shown.pop(conversation_id, None)  # re-inserted last: the dict stays oldest-first
            self._shown[conversation_id] = now
            self._forget_oldest()
            self._call(conversation_id, channel, "typing_on", connector.typing_on, recipient_id)
            return True
        if self._shown.pop(conversation_id, None) is None:
            return False  # nothing shown (or it was switched off already): nothing to hide
        self._call(conversation_id, channel, "typing_off", connector.typing_off, recipient_id)
        return True

    def reply_sent(self, conversation_id: int, channel: str, recipient_id: str) -> None:
        """The agent sent their reply: hide the indicator if one is showing."""
        self.signal(conversation_id, channel, recipient_id, False)

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
        while self._last_call:
            await asyncio.wait(set(self._last_call.values()))

    async def close(self) -> None:
        """Stop: calls still under way are abandoned (their indicators fade by themselves)."""
        for task in list(self._last_call.values()):
            task.cancel()
        if self._last_call:
            await asyncio.wait(set(self._last_call.values()))
        self._last_call.clear()
        self._shown.clear()

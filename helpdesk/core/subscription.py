"""A pub/sub subscription that outlives its transport: Redis restarting, or a network blip."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from helpdesk.core.errors import is_infrastructure_error

log = logging.getLogger(__name__)


async def follow_channel(client: Any, channel: str, on_message: Callable[[dict[str, Any]], None], *,
                         subscribed: asyncio.Event, on_resubscribed: Callable[[], Awaitable[None]] | None = None,
                         what: str = "subscription", longest_pause_s: float = 5.0) -> None:
    """Hand every message published on ``channel`` to ``on_message``, forever. ``client`` is a
    redis.asyncio client or the embedded broker's (same small API). A lost connection is taken up
    again, with growing pauses, for as long as it takes; ``on_resubscribed`` then runs (what was
    published meanwhile is lost: pub/sub keeps nothing). ``subscribed`` is set after the first try,
    whether it worked or not, so a caller waiting for it is not held up by an outage."""
    pause, lost = 0.1, False
    while True:
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel)
            subscribed.set()
            if lost and on_resubscribed is not None:
                log.info("%s is back", what)
                await on_resubscribed()
            pause, lost = 0.1, False
            async for message in pubsub.listen():
                if message.get("type", "message") == "message":  # not a subscription confirmation
                    on_message(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_infrastructure_error(exc):
                raise
            log.warning("lost the %s (%s); again in %.1fs", what, exc, pause)
            lost = True
            subscribed.set()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
        await asyncio.sleep(pause)
        pause = min(pause * 2, longest_pause_s)


async def start_following(client: Any, channel: str, on_message: Callable[[dict[str, Any]], None], *,
                          name: str, **options: Any) -> asyncio.Task:
    """``follow_channel`` in a task, returned once its first subscription was tried."""
    subscribed = asyncio.Event()
    task = asyncio.create_task(follow_channel(client, channel, on_message, subscribed=subscribed, **options),
                               name=name)
    waiting = asyncio.ensure_future(subscribed.wait())
    await asyncio.wait([task, waiting], return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    return task

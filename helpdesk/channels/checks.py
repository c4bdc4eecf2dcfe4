"""Asking each channel's platform at start-up whether CareDesk's credentials work.

A revoked or mistyped token otherwise shows only at the first reply the bot tries to send, as a
failed message in a conversation: an operator who reads the server's log at start-up learns it there.
The check never stops the server: the other channels, the inbox and the API work either way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from connectors.base import ChannelConnector, DeliveryError

log = logging.getLogger(__name__)

#: how long one platform may take to answer the check before it is reported as unanswered
CHECK_TIMEOUT_S = 15.0


async def check_channel_credentials(connectors: Mapping[str, ChannelConnector],
                                    timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, str]:
    """Check every channel's credentials with its platform at once and log the outcome of each; the
    outcome per channel ("ok", "rejected" or "unchecked"), for whoever wants it."""
    names = list(connectors)
    results = await asyncio.gather(*(_check(name, connectors[name], timeout_s) for name in names))
    return dict(zip(names, results))


async def _check(name: str, connector: ChannelConnector, timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            identity = await connector.check_credentials()
    except DeliveryError as exc:
        if exc.retryable:
            log.warning("channel %s: could not check its credentials with the platform (%s); "
                        "sending will be retried as usual", name, exc.reason)
            return "unchecked"
        log.error("channel %s: the platform rejected CareDesk's credentials: %s. Nothing can be sent on %s "
                  "until they are fixed; the other channels work.", name, exc.reason, name)
        return "rejected"
    except TimeoutError:
        log.warning("channel %s: the platform did not answer the credentials check within %.0fs", name, timeout_s)
        return "unchecked"
    except Exception as exc:  # a check is advice: whatever goes wrong in it must not stop the server
        log.warning("channel %s: the credentials check failed: %r", name, exc)
        return "unchecked"
    if identity is not None:
        log.info("channel %s: the platform accepted the credentials (%s)", name, identity)
    return "ok"

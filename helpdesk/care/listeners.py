"""Care's listeners: an order just delivered gets its first care message (the thank-you) at once,
not at the next periodic check.

The care sequence itself is scheduled in the delivering transaction (``helpdesk/shop/flows.py``
says why); what hangs off the ``order_delivered`` event is only the early send.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from helpdesk.core.events import DomainEvent, EventBus

#: buses already wired, so registering twice (the app and a test) does not send twice
_REGISTERED: weakref.WeakSet[EventBus] = weakref.WeakSet()


def register_care_listeners(events: EventBus, send_due_care_soon: Callable[[], None]) -> None:
    """Have ``send_due_care_soon`` run when an order is delivered; idempotent per bus."""
    if events in _REGISTERED:
        return
    _REGISTERED.add(events)

    async def send_care_when_delivered(event: DomainEvent) -> None:
        # An import's many events share one run (send_due_care_soon coalesces). The run is handed to
        # the worker before this listener awaits anything, so whoever waits for the worker to be idle
        # also waits for it.
        send_due_care_soon()

    events.on("order_delivered")(send_care_when_delivered)

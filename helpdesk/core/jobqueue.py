"""What domains hand background work to: the job runner of this process (see helpdesk.jobs / the
worker), seen through the three calls they make. Defined here so that a domain depends on this small
interface rather than on the runner or on the application's wiring."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol


class JobQueue(Protocol):
    """Runs jobs in the background, one after another per key (a chat, a conversation)."""

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run ``job`` after the jobs already queued for ``key``."""

    def submit_event(self, event_id: int, channel: str, sender_id: str, *, typing_off: bool = False) -> None:
        """Process a stored inbound event in the background."""

    def submit_drain(self, channel: str, recipient_id: str) -> None:
        """Send the chat's pending outbox messages in the background, in order."""

"""Routers: each bot feature registers handlers guarded by small async filters."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.context import TurnContext

Handler = Callable[["TurnContext"], Awaitable[None]]
Filter = Callable[["TurnContext"], Awaitable[bool]]


@dataclass
class Router:
    """A named group of handlers; the first handler whose filters all pass handles the turn."""

    name: str
    _handlers: list[tuple[tuple[Filter, ...], Handler]] = field(default_factory=list)

    def handler(self, *filters: Filter) -> Callable[[Handler], Handler]:
        """Register the decorated coroutine for turns that pass every filter."""

        def register(function: Handler) -> Handler:
            self._handlers.append((filters, function))
            return function

        return register

    async def dispatch(self, ctx: TurnContext) -> bool:
        """Run the first matching handler; whether one matched."""
        for filters, function in self._handlers:
            if all([await check(ctx) for check in filters]):
                ctx.handled_by = f"{self.name}.{function.__name__}"
                await function(ctx)
                return True
        return False


def intent_is(*names: str) -> Filter:
    """Passes when the NLU's top intent is one of ``names``."""
    wanted = frozenset(names)

    async def check(ctx: TurnContext) -> bool:
        return ctx.intent in wanted

    return check


def awaiting(step: str) -> Filter:
    """Passes when the conversation waits on ``step`` (a question the bot asked)."""

    async def check(ctx: TurnContext) -> bool:
        return ctx.state.get("awaiting") == step

    return check


def payload_starts_with(prefix: str) -> Filter:
    """Passes when a button press carries a payload with this prefix."""

    async def check(ctx: TurnContext) -> bool:
        return bool(ctx.turn.payload and ctx.turn.payload.startswith(prefix))

    return check


async def always(ctx: TurnContext) -> bool:
    """Passes every turn (the catch-all)."""
    return True

"""The bot's features, one router each, in the order they get a chance to handle a turn."""

from bot.flows import faq, fallback, handoff, orders, smalltalk
from bot.router import Router


def default_routers() -> list[Router]:
    """Routers in priority order: handoff and complaints first, the catch-all fallback last."""
    return [handoff.router, orders.router, faq.router, smalltalk.router, fallback.router]


__all__ = ["default_routers"]

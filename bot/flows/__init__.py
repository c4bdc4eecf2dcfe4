"""The bot's features, one router each, in the order they get a chance to handle a turn."""

from bot.flows import complaints, faq, fallback, handoff, optout, orders, ratings, smalltalk
from bot.router import Router


def default_routers() -> list[Router]:
    """Routers in priority order: explicit commands and handoff first, the catch-all fallback last."""
    return [optout.router, orders.answers_router, handoff.router, ratings.router, orders.router, complaints.router, faq.router,
            smalltalk.router, fallback.router]


__all__ = ["default_routers", "optout"]

"""The bot's features, one router each, in the order they get a chance to handle a turn."""

from bot.flows import complaints, faq, fallback, handoff, media, nps, optout, orders, products, ratings, smalltalk
from bot.router import Router


def default_routers() -> list[Router]:
    """Routers in priority order: explicit commands and handoff first, then what the NLU read, then
    what it could not read (photos, stickers, a shared contact or location), the catch-all fallback last."""
    return [optout.router, orders.answers_router, handoff.router, nps.router, products.router, ratings.router,
            orders.router, complaints.router, faq.router, smalltalk.router, media.router, fallback.router]


__all__ = ["default_routers", "optout"]

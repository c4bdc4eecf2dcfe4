"""Greetings, thanks, goodbyes, 'are you a bot?', and things outside the shop's business."""

from __future__ import annotations

from bot.context import TurnContext
from bot.router import Router, intent_is

router = Router("smalltalk")

SIMPLE_ANSWERS = ("greet", "thank", "goodbye", "bot_challenge", "out_of_scope", "affirm", "deny", "give_rating")


@router.handler(intent_is(*SIMPLE_ANSWERS))
async def answer_smalltalk(ctx: TurnContext) -> None:
    """Each small-talk intent has its own template."""
    ctx.say(f"smalltalk_{ctx.intent}")

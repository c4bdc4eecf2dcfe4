"""When the bot does not understand: ask to rephrase once, then offer a person."""

from __future__ import annotations

from bot.context import TurnContext
from bot.flows.handoff import hand_over
from bot.router import Router, always

router = Router("fallback")


@router.handler(always)
async def ask_to_rephrase_or_hand_over(ctx: TurnContext) -> None:
    """Counts misunderstandings in a row; at the limit the conversation goes to a person."""
    misses = int(ctx.state.get("fallbacks", 0)) + 1
    ctx.state["fallbacks"] = misses
    if misses >= int(ctx.state.get("fallback_limit", 2)):
        ctx.state["fallbacks"] = 0
        await hand_over(ctx, "bot_failed", template="fallback_handoff")
    else:
        ctx.say("fallback_rephrase")

"""Opting out of proactive messages ("dừng", "stop", "hủy nhận tin") — honoured even while a person
owns the conversation."""

from __future__ import annotations

import re

from bot.context import TurnContext
from bot.knowledge import fold
from bot.router import Router

router = Router("optout")

# Whole-message commands only: "stop" inside a sentence ("the blender won't stop") is no opt-out.
_OPT_OUT = re.compile(r"^\s*(dung|dung lai|stop|unsubscribe|huy nhan tin|khong nhan tin nua|ngung nhan tin)"
                      r"\s*[.!]*\s*$")
_OPT_IN = re.compile(r"^\s*(nhan tin lai|dang ky nhan tin|start|subscribe)\s*[.!]*\s*$")


async def asks_to_opt_out(ctx: TurnContext) -> bool:
    """The whole message is an opt-out command."""
    return bool(_OPT_OUT.match(fold(ctx.turn.text)))


async def asks_to_opt_in(ctx: TurnContext) -> bool:
    """The whole message asks for care messages again."""
    return bool(_OPT_IN.match(fold(ctx.turn.text)))


@router.handler(asks_to_opt_out)
async def opt_out(ctx: TurnContext) -> None:
    """Stop proactive care messages and confirm."""
    if ctx.services.customers is not None and ctx.customer_id is not None:
        await ctx.services.customers.set_opt_out(ctx.customer_id, True)
    ctx.say("optout_confirmed")


@router.handler(asks_to_opt_in)
async def opt_in(ctx: TurnContext) -> None:
    """Resume proactive care messages and confirm."""
    if ctx.services.customers is not None and ctx.customer_id is not None:
        await ctx.services.customers.set_opt_out(ctx.customer_id, False)
    ctx.say("optin_confirmed")

"""Handing the conversation to a person: on request, or when the customer accepts the bot's offer."""

from __future__ import annotations

from bot.context import TurnContext
from bot.router import Router, awaiting, intent_is

router = Router("handoff")


async def hand_over(ctx: TurnContext, reason: str, priority: str = "normal", template: str = "handoff_requested",
                    note: str | None = None) -> None:
    """Escalate and tell the customer a person will answer, and roughly when."""
    eta = await handoff_eta(ctx, priority)
    ctx.say(template, eta=eta)
    ctx.escalate(reason, priority=priority, note=note)


async def handoff_eta(ctx: TurnContext, priority: str) -> str:
    """When a person will answer, in the customer's language."""
    if ctx.services.customers is None:
        return ctx.text("handoff_eta_unknown")
    return await ctx.services.customers.handoff_eta(priority, ctx.locale)


@router.handler(intent_is("request_human"))
async def hand_over_on_request(ctx: TurnContext) -> None:
    """The customer asked for a person."""
    await hand_over(ctx, "customer_request")


@router.handler(awaiting("offer_handoff"), intent_is("affirm"))
async def accept_offered_handoff(ctx: TurnContext) -> None:
    """The bot offered a person and the customer said yes."""
    await hand_over(ctx, "customer_request")


@router.handler(awaiting("offer_handoff"), intent_is("deny"))
async def decline_offered_handoff(ctx: TurnContext) -> None:
    """The bot offered a person and the customer said no."""
    ctx.state.pop("awaiting", None)
    ctx.say("smalltalk_deny")

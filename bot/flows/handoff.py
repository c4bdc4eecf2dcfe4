"""Handing the conversation to a person: on request, and on complaints."""

from __future__ import annotations

from bot.context import TurnContext
from bot.router import Router, intent_is

router = Router("handoff")

COMPLAINT_INTENTS = ("complain_delivery", "complain_service", "report_defect")


@router.handler(intent_is("request_human"))
async def hand_over_on_request(ctx: TurnContext) -> None:
    """The customer asked for a person."""
    ctx.say("handoff_requested")
    ctx.escalate("customer_request", priority="normal")


@router.handler(intent_is(*COMPLAINT_INTENTS))
async def hand_over_complaint(ctx: TurnContext) -> None:
    """Complaints and defects go to a person at high priority, with an apology first."""
    ctx.say(f"{ctx.intent}_ack")
    ctx.escalate(ctx.intent or "complaint", priority="high")

"""Order and warranty requests. Lookups arrive with the conversation-engine issue; until then a
person takes these, and the customer is told so honestly."""

from __future__ import annotations

from bot.context import TurnContext
from bot.router import Router, intent_is

router = Router("orders")


@router.handler(intent_is("order_status", "check_warranty_status", "cancel_order", "change_order"))
async def pass_order_request_to_agent(ctx: TurnContext) -> None:
    """Collects the order code if given and hands the request to a person."""
    code = ctx.entity("order_id") or ctx.entity("serial") or ctx.entity("phone")
    ctx.say("order_request_handoff", reference=code or "")
    ctx.escalate(ctx.intent or "order_request", priority="normal", note=code)

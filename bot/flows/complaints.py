"""Defects and complaints: apologise, collect the order and what happened, then a person takes over
at high priority."""

from __future__ import annotations

from bot.context import TurnContext
from bot.flows.handoff import hand_over
from bot.router import Router, awaiting, intent_is

router = Router("complaints")

COMPLAINT_INTENTS = ("report_defect", "complain_delivery", "complain_service")


@router.handler(intent_is(*COMPLAINT_INTENTS))
async def take_complaint(ctx: TurnContext) -> None:
    """Apologise; escalate at once when we know enough, else ask once for the order and details."""
    intent = ctx.intent or "complaint"
    order_id = ctx.entity("order_id") or ctx.state.get("lookup", {}).get("order_id")
    if order_id or intent == "complain_service":
        await hand_over(ctx, intent, priority="high", template=f"{intent}_ack",
                        note=_note(order_id, ctx.turn.text))
        return
    ctx.state["complaint"] = {"intent": intent, "text": ctx.turn.text}
    ctx.state["awaiting"] = "complaint_details"
    ctx.say(f"{intent}_ask_details")


@router.handler(awaiting("complaint_details"))
async def complaint_details(ctx: TurnContext) -> None:
    """Whatever the customer adds (order code, description, a photo) goes with the escalation."""
    complaint = ctx.state.pop("complaint", {"intent": "complaint", "text": ""})
    ctx.state.pop("awaiting", None)
    details = ctx.turn.text + (" [+ photo]" if ctx.turn.has_attachments else "")
    await hand_over(ctx, complaint["intent"], priority="high", template="complaint_escalated",
                    note=_note(ctx.entity("order_id"), f"{complaint['text']} / {details}"))


def _note(order_id: str | None, text: str) -> str:
    return f"order {order_id}: {text}" if order_id else text

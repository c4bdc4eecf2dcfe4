"""Defects and complaints: apologise, collect the order and what happened (photos and videos count as
evidence), then a person takes over at high priority."""

from __future__ import annotations

from typing import Any

from bot.attachments import count_words, evidence_in, with_evidence
from bot.context import TurnContext
from bot.flows.handoff import hand_over
from bot.router import Router, awaiting, intent_is

router = Router("complaints")

COMPLAINT_INTENTS = ("report_defect", "complain_delivery", "complain_service")
#: how many pieces of evidence the dialogue state keeps between turns (the files themselves are stored
#: with the messages; this only names them in the handoff note)
MAX_HELD_EVIDENCE = 20


@router.handler(intent_is(*COMPLAINT_INTENTS))
async def take_complaint(ctx: TurnContext) -> None:
    """Apologise; escalate at once when we know enough, else ask once for the order and details.

    Photos sent before the complaint (held by the media flow) and with it go with the escalation.
    """
    intent = ctx.intent or "complaint"
    order_id = ctx.entity("order_id") or ctx.state.get("lookup", {}).get("order_id")
    # a complaint restated while the bot waits for its details: what came with the first telling counts
    earlier = ctx.state.pop("complaint", {}).get("evidence", [])
    if earlier:
        ctx.state.pop("awaiting", None)
    evidence = list(earlier) + held_evidence(ctx) + evidence_in(ctx.turn.attachments)
    ctx.evidence_taken = True
    if order_id or intent == "complain_service":
        acknowledge_evidence(ctx, evidence_in(ctx.turn.attachments))
        await hand_over(ctx, intent, priority="high", template=f"{intent}_ack",
                        note=with_evidence(_note(order_id, ctx.turn.text), ctx, evidence))
        return
    ctx.state["complaint"] = {"intent": intent, "text": ctx.turn.text, "evidence": evidence}
    ctx.state["awaiting"] = "complaint_details"
    if evidence:
        ctx.say("complaint_ask_details_with_evidence", evidence=count_words(ctx, evidence))
    else:
        ctx.say(f"{intent}_ask_details")


@router.handler(awaiting("complaint_details"))
async def complaint_details(ctx: TurnContext) -> None:
    """Whatever the customer adds (order code, description, a photo, where it happened) goes with
    the escalation."""
    complaint = ctx.state.pop("complaint", {"intent": "complaint", "text": ""})
    ctx.state.pop("awaiting", None)
    added = evidence_in(ctx.turn.attachments)
    ctx.evidence_taken = True
    evidence = list(complaint.get("evidence", [])) + held_evidence(ctx) + added
    details = " / ".join(part for part in (complaint["text"], ctx.turn.text, ctx.entity("address")) if part)
    acknowledge_evidence(ctx, added)
    await hand_over(ctx, complaint["intent"], priority="high", template="complaint_escalated",
                    note=with_evidence(_note(ctx.entity("order_id"), details), ctx, evidence))


def held_evidence(ctx: TurnContext) -> list[dict[str, Any]]:
    """Photos and files the customer sent before saying what they are about (taken from the state)."""
    return list(ctx.state.pop("evidence", []))


def hold_evidence(ctx: TurnContext, evidence: list[dict[str, Any]]) -> None:
    """Keep evidence sent on its own until the customer says what it is about."""
    ctx.evidence_taken = True
    if not evidence:
        return
    held = ctx.state.setdefault("evidence", [])
    held.extend(evidence)
    del held[:-MAX_HELD_EVIDENCE]


def acknowledge_evidence(ctx: TurnContext, evidence: list[dict[str, Any]]) -> None:
    """Tell the customer their photos or videos arrived and go to the person who takes over."""
    if evidence:
        ctx.say("evidence_received", evidence=count_words(ctx, evidence))


def _note(order_id: str | None, text: str) -> str:
    return f"order {order_id}: {text}" if order_id else text

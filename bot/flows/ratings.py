"""Star ratings: button presses and typed answers to a rating request; low ratings get a follow-up."""

from __future__ import annotations

import re

from bot.attachments import evidence_in, with_evidence
from bot.context import TurnContext
from bot.flows.complaints import acknowledge_evidence
from bot.flows.handoff import hand_over
from bot.router import Router, awaiting, intent_is, payload_starts_with
from connectors.base import parse_rating_payload

router = Router("ratings")

_BARE_STARS = re.compile(r"^\s*([1-5])\s*(\*|sao|stars?|⭐)?\s*[.!]*\s*$", re.IGNORECASE)


def stars_in(ctx: TurnContext) -> int | None:
    """The rating the customer typed: a bare 1–5, '5 sao', '⭐⭐⭐⭐', or the NLU's rating entity."""
    text = ctx.turn.text.strip()
    if text and set(text) <= {"⭐", " "}:
        return min(5, text.count("⭐")) or None
    match = _BARE_STARS.match(text)
    if match:
        return int(match.group(1))
    value = ctx.entity("rating")
    if value and value.isdigit() and 1 <= int(value) <= 5:
        return int(value)
    return None


async def typed_rating_for_a_pending_request(ctx: TurnContext) -> bool:
    """A typed rating while the shop waits for one (channels without buttons)."""
    if ctx.turn.payload or ctx.services.customers is None or ctx.customer_id is None:
        return False
    if stars_in(ctx) is None or (ctx.intent not in ("give_rating", "nlu_fallback", None)
                                 and not _BARE_STARS.match(ctx.turn.text)):
        return False
    subject = await ctx.services.customers.pending_rating_subject(ctx.customer_id)
    ctx.state["_rating_subject"] = subject
    return subject is not None


@router.handler(payload_starts_with("rating:"))
async def rating_button(ctx: TurnContext) -> None:
    """A star button was pressed."""
    parsed = parse_rating_payload(ctx.turn.payload)
    if parsed is None:
        ctx.say("rating_invalid")
        return
    await record(ctx, *parsed)


@router.handler(typed_rating_for_a_pending_request)
async def typed_rating(ctx: TurnContext) -> None:
    """The customer typed 1–5 in answer to a rating request."""
    await record(ctx, ctx.state.pop("_rating_subject"), stars_in(ctx))


@router.handler(awaiting("rating_feedback"))
async def low_rating_feedback(ctx: TurnContext) -> None:
    """What went wrong, after a rating of 1–3: stored with the rating, and a ticket opened."""
    rating = ctx.state.pop("rating", {})
    ctx.state.pop("awaiting", None)
    stars = int(rating.get("stars", 3))
    if (ctx.services.customers is not None and ctx.customer_id is not None and rating.get("subject")
            and ctx.turn.text.strip()):
        await ctx.services.customers.add_rating_comment(ctx.customer_id, rating["subject"], ctx.turn.text)
    # a photo of what went wrong goes to the person who follows up, with the words
    evidence = evidence_in(ctx.turn.attachments)
    ctx.evidence_taken = True
    acknowledge_evidence(ctx, evidence)
    note = with_evidence(f"{stars}★ {rating.get('subject', '')}: {ctx.turn.text}", ctx, evidence)
    if stars <= 2:
        await hand_over(ctx, "low_rating", priority="high", template="rating_low_escalated", note=note)
    else:
        ctx.say("rating_feedback_thanks")
        ctx.escalate("rating_feedback", priority="low", note=note)


@router.handler(intent_is("give_rating"))
async def rating_without_request(ctx: TurnContext) -> None:
    """A rating nobody asked for: thank the customer."""
    ctx.say("smalltalk_give_rating")


async def record(ctx: TurnContext, subject: str, stars: int) -> None:
    """Store the rating and answer: thanks and a review invitation, or a question about what went wrong."""
    ctx.state.pop("_rating_subject", None)
    if ctx.services.customers is not None and ctx.customer_id is not None:
        await ctx.services.customers.record_rating(ctx.customer_id, subject, stars)
    if stars >= 4:
        ctx.say("rating_high_thanks", stars=stars)
        return
    ctx.state["rating"] = {"subject": subject, "stars": stars}
    ctx.state["awaiting"] = "rating_feedback"
    ctx.say("rating_low_ask", stars=stars)

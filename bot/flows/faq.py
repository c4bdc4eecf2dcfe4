"""Answers to the shop's frequently asked questions, from data/faq."""

from __future__ import annotations

from bot.context import TurnContext
from bot.router import Router, intent_is

router = Router("faq")

FAQ_INTENTS = (
    "ask_warranty_policy",
    "ask_return_policy",
    "ask_delivery_time",
    "ask_payment",
    "ask_promotion",
    "ask_store_location",
    "product_usage",
)


@router.handler(intent_is(*FAQ_INTENTS))
async def answer_faq(ctx: TurnContext) -> None:
    """Reply with the best matching FAQ answer, and its links."""
    entry = ctx.knowledge.answer_for(ctx.intent or "", ctx.turn.text, ctx.locale)
    if entry is None:
        ctx.say("faq_missing")
        ctx.state["awaiting"] = "offer_handoff"
        return
    answer = entry.answer.get(ctx.locale) or next(iter(entry.answer.values()))
    if entry.links:
        answer += "\n" + "\n".join(f"🔗 {link.title}: {link.url}" for link in entry.links)
    ctx.reply(answer)

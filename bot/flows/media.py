"""Messages the NLU cannot read: a photo, video, file or sticker without words, a shared contact or
location. Each gets a sensible answer instead of "I didn't understand", and none counts as a
misunderstanding toward handing over (the engine leaves the count alone for this router)."""

from __future__ import annotations

from bot.attachments import count_words, evidence_in, is_media_only, shared_values
from bot.context import TurnContext
from bot.flows.complaints import hold_evidence
from bot.router import Router

router = Router("media")


async def shares_contact_or_location(ctx: TurnContext) -> bool:
    """A shared contact or location, with nothing the NLU could read besides it."""
    attachments = ctx.turn.attachments
    return (ctx.intent in (None, "nlu_fallback") and not ctx.turn.payload
            and bool(shared_values(attachments, "phone") or shared_values(attachments, "address")))


@router.handler(shares_contact_or_location)
async def remember_shared_details(ctx: TurnContext) -> None:
    """Keep the phone and address for the flow that needs them next, and say what is kept."""
    phone, address = ctx.entity("phone"), ctx.entity("address")
    if phone:
        ctx.state["shared_phone"] = phone
        ctx.say("contact_received", phone=phone)
    if address:
        ctx.state["shared_address"] = address
        ctx.say("location_received")


@router.handler(is_media_only)
async def acknowledge_media(ctx: TurnContext) -> None:
    """A photo or file on its own: keep it as evidence for a complaint and ask what it is about; a
    sticker gets a friendly question."""
    evidence = evidence_in(ctx.turn.attachments)
    if not evidence:
        ctx.say("media_sticker")
        return
    hold_evidence(ctx, evidence)
    ctx.say("media_ask_topic", evidence=count_words(ctx, evidence))

"""A customer waiting for a person who asks for one again ("gặp nhân viên", "có ai không") is told
their place in the queue and when to expect an answer, instead of silence or a second hand-over.
The engine offers this router only the turns of conversations a person owns."""

from __future__ import annotations

import re

from bot.context import TurnContext
from bot.knowledge import fold
from bot.router import Router

router = Router("waiting")

# "is anybody there?" is a greeting to the bot but, while waiting for a person, a question about them
_ANYONE_THERE = re.compile(r"\b(co ai (o day |do |truc |online )?(khong|ko|k)|con ai (khong|ko)|"
                           r"nhan vien (dau|dau roi|oi)|sao lau (vay|the|qua)|(is )?any(one|body) there|"
                           r"hello\s*\?)")


async def asks_for_a_person(ctx: TurnContext) -> bool:
    """The customer asks for a person (the handoff intent) or whether anybody is there."""
    return ctx.intent == "request_human" or bool(_ANYONE_THERE.search(fold(ctx.turn.text)))


@router.handler(asks_for_a_person)
async def tell_place_in_queue(ctx: TurnContext) -> None:
    """Say where the customer stands in the queue and roughly when a person will answer; nothing when
    a person already answered (they are there to read it)."""
    customers = ctx.services.customers
    if customers is None or ctx.turn.conversation_id is None:
        ctx.say("handoff_still_waiting", eta=ctx.text("handoff_eta_unknown"))
        return
    place = await customers.queue_place(ctx.turn.conversation_id, ctx.locale)
    if place is None:
        return
    ctx.say("handoff_queue_place", position=place.position, eta=place.eta)

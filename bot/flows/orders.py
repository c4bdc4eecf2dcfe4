"""Order status, warranty status, cancel and change requests — with an ownership check first.

Order and warranty details are revealed only to the customer they belong to: one whose verified
phone is the order's phone, or who gives the order's phone in this conversation (which then
becomes their verified phone). A wrong phone and an unknown code get the same answer, so codes
cannot be probed. Two failed lookups in a row hand the conversation to a person.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.context import TurnContext
from bot.flows.handoff import hand_over
from bot.knowledge import fold
from bot.ports import OrderView, WarrantyView
from bot.router import Router, awaiting, intent_is

router = Router("orders")
#: runs before handoff and complaints: a bare "0912345678" answering the bot's question is an answer,
#: whatever intent the NLU guesses for it
answers_router = Router("order_answers")

LOOKUP_INTENTS = ("order_status", "check_warranty_status", "cancel_order", "change_order")
REFERENCE_ENTITIES = ("order_id", "serial", "phone")
MAX_FAILED_LOOKUPS = 2


async def gives_a_reference(ctx: TurnContext) -> bool:
    """The message carries an order code, a serial or a phone."""
    return any(ctx.entity(name) for name in REFERENCE_ENTITIES)


async def not_another_request(ctx: TurnContext) -> bool:
    """While the bot waits for a reference, a message that is clearly another request wins."""
    return ctx.intent not in ("request_human", "report_defect", "complain_delivery", "complain_service") or bool(
        await gives_a_reference(ctx))


@router.handler(intent_is(*LOOKUP_INTENTS))
async def start_lookup(ctx: TurnContext) -> None:
    """A new order or warranty request: remember what it is about and continue."""
    previous = ctx.state.get("lookup", {})
    ctx.state["lookup"] = {"intent": ctx.intent, "failures": previous.get("failures", 0), "request": ctx.turn.text,
                           **{k: previous[k] for k in REFERENCE_ENTITIES if k in previous}}
    if "phone" not in ctx.state["lookup"] and ctx.state.get("shared_phone"):
        # a contact shared earlier counts as the phone the customer would otherwise type now
        ctx.state["lookup"]["phone"] = ctx.state["shared_phone"]
    await continue_lookup(ctx)


@answers_router.handler(awaiting("lookup_reference"), gives_a_reference)
@answers_router.handler(awaiting("lookup_phone"), gives_a_reference)
async def reference_given(ctx: TurnContext) -> None:
    """The customer answered the bot's question with an order code, a serial or a phone."""
    await continue_lookup(ctx)


@router.handler(awaiting("lookup_reference"), not_another_request)
@router.handler(awaiting("lookup_phone"), not_another_request)
async def answer_without_reference(ctx: TurnContext) -> None:
    """The customer answered, but without anything to look up: ask again (or count a failure)."""
    await continue_lookup(ctx)


async def continue_lookup(ctx: TurnContext) -> None:
    """Fill what the message gives, then answer, ask for what is missing, or count a failure."""
    slots = ctx.state.setdefault("lookup", {"intent": "order_status", "failures": 0})
    for name in REFERENCE_ENTITIES:
        if ctx.entity(name):
            slots[name] = ctx.entity(name)
    ctx.state.pop("awaiting", None)
    shop = ctx.services.shop
    order: OrderView | None = None
    warranties: list[WarrantyView] = []
    owner_phone: str | None = None
    if slots["intent"] == "check_warranty_status" and slots.get("serial"):
        warranty = await shop.warranty_by_serial(slots["serial"])
        if warranty is not None:
            warranties, owner_phone = [warranty], warranty.phone
    elif slots.get("order_id"):
        order = await shop.order_by_code(slots["order_id"])
        if order is not None:
            owner_phone = order.phone
            if slots["intent"] == "check_warranty_status":
                warranties = await shop.warranties_for_order(order.code)
    elif slots.get("phone") and _verified_phone(ctx) == slots["phone"]:
        orders = await shop.orders_for_phone(slots["phone"])
        if orders:
            order, owner_phone = orders[0], orders[0].phone
            if slots["intent"] == "check_warranty_status":
                warranties = await shop.warranties_for_order(order.code)
    else:
        ctx.state["awaiting"] = "lookup_reference"
        ctx.say("lookup_ask_serial_or_order" if slots["intent"] == "check_warranty_status"
                else "lookup_ask_order")
        return

    if owner_phone is None:
        await _failed(ctx, slots)
        return
    if _verified_phone(ctx) != owner_phone:
        if not slots.get("phone"):
            ctx.state["awaiting"] = "lookup_phone"
            ctx.ask_phone("lookup_ask_phone")
            return
        if slots["phone"] != owner_phone:
            slots.pop("phone", None)
            await _failed(ctx, slots)
            return
        ctx.state["verified_phone"] = owner_phone
        if ctx.services.customers is not None and ctx.customer_id is not None:
            await ctx.services.customers.link_verified_phone(ctx.customer_id, owner_phone)
    ctx.state.pop("lookup", None)
    await _answer(ctx, slots["intent"], order, warranties, slots.get("request") or ctx.turn.text)


def _verified_phone(ctx: TurnContext) -> str | None:
    if ctx.state.get("verified_phone"):
        return ctx.state["verified_phone"]
    return ctx.turn.customer.verified_phone if ctx.turn.customer else None


async def _failed(ctx: TurnContext, slots: dict) -> None:
    slots["failures"] = slots.get("failures", 0) + 1
    slots.pop("order_id", None)
    slots.pop("serial", None)
    if slots["failures"] >= MAX_FAILED_LOOKUPS:
        ctx.state.pop("lookup", None)
        await hand_over(ctx, "lookup_failed", template="lookup_failed_handoff")
        return
    ctx.state["awaiting"] = "lookup_reference"
    ctx.say("lookup_not_verified")


async def _answer(ctx: TurnContext, intent: str, order: OrderView | None, warranties: list[WarrantyView],
                  request: str) -> None:
    tz = ZoneInfo(ctx.services.timezone)
    if intent == "check_warranty_status":
        if not warranties:
            ctx.say("warranty_none_for_order", code=order.code if order else "")
            return
        now = datetime.now(tz)
        for warranty in warranties:
            key = "warranty_active" if warranty.ends_at > now else "warranty_expired"
            ctx.say(key, product=warranty.product_name, serial=warranty.serial,
                    ends=_date(warranty.ends_at, tz), starts=_date(warranty.starts_at, tz))
        return
    assert order is not None
    if intent == "order_status":
        ctx.say(f"order_status_{order.status}", code=order.code, items=", ".join(order.items),
                delivered=_date(order.delivered_at, tz) if order.delivered_at else "")
        return
    if order.status in ("delivered", "cancelled", "returned"):
        ctx.say(f"{intent}_not_possible", code=order.code, status=ctx.text(f"status_{order.status}"))
        return
    if intent == "change_order" and _about_the_address(request):
        address = ctx.entity("address") or ctx.state.pop("shared_address", None)
        if not address:
            ctx.state["change"] = {"code": order.code, "request": request}
            ctx.state["awaiting"] = "change_address"
            ctx.say("change_order_ask_address")
            return
        await _change_address_ticket(ctx, order.code, request, address)
        return
    reason = "cancel_request" if intent == "cancel_order" else "change_request"
    await hand_over(ctx, reason, template=f"{intent}_ticket", note=f"{intent} {order.code}: {request}")


@answers_router.handler(awaiting("change_address"))
async def new_address_given(ctx: TurnContext) -> None:
    """The new delivery address: a shared location (coordinates and a map link) or typed words."""
    change = ctx.state.get("change", {})
    address = ctx.entity("address") or ctx.turn.text.strip()
    if not address or not change:
        ctx.say("change_order_ask_address")
        return
    ctx.state.pop("change", None)
    ctx.state.pop("awaiting", None)
    await _change_address_ticket(ctx, change["code"], change["request"], address)


async def _change_address_ticket(ctx: TurnContext, code: str, request: str, address: str) -> None:
    await hand_over(ctx, "change_request", template="change_order_ticket",
                    note=f"change_order {code}: {request} / address: {address}")


def _about_the_address(request: str) -> bool:
    """The change asked for is where the order goes."""
    folded = fold(request)
    return any(word in folded for word in ("dia chi", "address", "vi tri", "location"))


def _date(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y")

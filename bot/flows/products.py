"""Questions about a product — its price, whether the shop sells it, whether it is in stock, its
warranty period — answered from the shop's catalog.

A product question may come while another flow waits for an answer (the warranty lookup waiting for
a serial, a complaint waiting for details): it is answered, and that flow's question is asked again,
its state untouched, so the customer's next message continues it.
"""

from __future__ import annotations

import re
from functools import lru_cache

from bot.catalog import CatalogIndex, ProductMatch, asked_item
from bot.context import TurnContext
from bot.ports import ProductView
from bot.router import Router
from nlu.normalization import fold

router = Router("products")

PRICE_INTENT = "ask_price"
AVAILABILITY_INTENT = "ask_product_availability"
WARRANTY_INTENTS = ("ask_warranty_policy", "check_warranty_status")
#: a warranty question about a period ("bao lâu", "mấy tháng"), not coverage or where to send it
_PERIOD = re.compile(r"\b(?:bao\s+lau|may\s+(?:thang|nam)|bao\s+nhieu\s+(?:thang|nam)|bn\s+(?:thang|nam)"
                     r"|how\s+long|how\s+many\s+(?:months|years)|warranty\s+period|thoi\s+(?:gian|han))\b")


@lru_cache(maxsize=4)
def _index(products: tuple[ProductView, ...]) -> CatalogIndex:
    return CatalogIndex(products)


async def _catalog(ctx: TurnContext) -> CatalogIndex:
    """The catalog's index (rebuilt only when the catalog changed)."""
    return _index(tuple(await ctx.services.shop.products()))


def _named_product(ctx: TurnContext, index: CatalogIndex) -> tuple[ProductMatch | None, str | None]:
    """The catalog product the message names, and else the words naming a product the shop may not
    sell (the NLU's ``product`` entity, or what follows "có bán")."""
    entities = [e for e in (ctx.nlu.entities if ctx.nlu else []) if e.entity == "product"]
    for entity in entities:
        surface = ctx.turn.text[entity.start:entity.end] or str(entity.value)
        for candidate in (surface, str(entity.value)):
            match = index.find(candidate)
            if match is not None:
                return match, None
    match = index.find(ctx.turn.text)
    if match is not None:
        return match, None
    if entities:
        # the entity's value: the lookup table's spelling, with diacritics even when typed without
        return None, str(entities[0].value) or ctx.turn.text[entities[0].start:entities[0].end]
    return None, asked_item(ctx.turn.text)


async def is_product_question(ctx: TurnContext) -> bool:
    """A price or availability question, or a question about a catalog product's warranty period."""
    if ctx.intent in (PRICE_INTENT, AVAILABILITY_INTENT):
        return True
    if ctx.intent not in WARRANTY_INTENTS or any(ctx.entity(name) for name in ("serial", "order_id")):
        return False
    if not _PERIOD.search(fold(ctx.turn.text)):
        return False
    index = await _catalog(ctx)
    return _named_product(ctx, index)[0] is not None


def _price(ctx: TurnContext, price: int) -> str:
    if ctx.locale == "en":
        return f"{price:,} VND"
    return f"{price:,}".replace(",", ".") + "đ"


def _list(ctx: TurnContext, products: list[ProductView]) -> str:
    return ", ".join(p.display_name(ctx.locale) for p in products)


@router.handler(is_product_question)
async def answer_product_question(ctx: TurnContext) -> None:
    """Answer from the catalog, then ask again what another flow was waiting for."""
    index = await _catalog(ctx)
    if not index.products:  # no catalog to answer from (a shop that has not loaded one)
        ctx.say("faq_missing")
        ctx.state["awaiting"] = "offer_handoff"
        return
    match, other = _named_product(ctx, index)
    if match is None:
        if other and ctx.intent != PRICE_INTENT:
            ctx.say("product_not_sold", item=other, products=_list(ctx, index.products))
        else:
            ctx.say("product_which", products=_list(ctx, index.products))
    else:
        for product in match.products:
            _answer(ctx, product)
    _resume(ctx)


def _answer(ctx: TurnContext, product: ProductView) -> None:
    name = product.display_name(ctx.locale)
    price = _price(ctx, product.price_vnd) if product.price_vnd is not None else None
    if ctx.intent in WARRANTY_INTENTS:
        ctx.say("product_warranty", product=name, months=product.warranty_months)
    elif product.stock == 0:
        ctx.say("product_out_of_stock_price" if price else "product_out_of_stock", product=name, price=price)
    elif ctx.intent == PRICE_INTENT:
        ctx.say("product_price" if price else "product_price_unknown", product=name, price=price)
    elif product.stock is None:
        ctx.say("product_sold_price" if price else "product_sold", product=name, price=price)
    else:
        ctx.say("product_in_stock_price" if price else "product_in_stock", product=name, price=price,
                stock=product.stock)


def _resume(ctx: TurnContext) -> None:
    """Ask again the question another flow is waiting on (its state is left as it was)."""
    step = ctx.state.get("awaiting")
    if step == "lookup_reference":
        intent = ctx.state.get("lookup", {}).get("intent")
        ctx.say("lookup_ask_serial_or_order" if intent == "check_warranty_status" else "lookup_ask_order")
    elif step == "lookup_phone":
        ctx.say("lookup_ask_phone")
    elif step == "change_address":
        ctx.say("change_order_ask_address")
    elif step == "complaint_details":
        key = f"{ctx.state.get('complaint', {}).get('intent', '')}_ask_details"
        ctx.say(key if ctx.responses.has(key) else "report_defect_ask_details")
    elif step == "rating_feedback":
        ctx.say("rating_low_ask", stars=ctx.state.get("rating", {}).get("stars", 3))
    elif step == "offer_handoff":
        ctx.state.pop("awaiting", None)  # the offer was about an earlier question; this one is answered

"""What after-delivery care messages say: templates from data/bot/care.yml filled in with the
customer's name and the ordered product, usage tips from the FAQ."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import Any

from sqlmodel import Session, select

from bot.knowledge import FaqEntry, Knowledge, fold
from bot.responses import Responses
from connectors.base import OutboundRatingRequest, OutboundText
from helpdesk.care.models import CareKind
from helpdesk.care.reminders import expiring_warranty, maintenance_step, reminder_type
from helpdesk.customers.models import Customer
from helpdesk.shop.models import Order, Product

@dataclass
class CareComposer:
    """Renders care messages from the templates in data/bot/care.yml and the FAQ's usage answers."""

    responses: Responses
    knowledge: Knowledge
    shop_name: str
    usage_intent: str = "product_usage"
    #: the shop's time zone, for dates in templates
    timezone: tzinfo = UTC

    def compose(
        self, session: Session, kind: str, order: Order, customer: Customer, recipient_id: str, *,
        buttons: bool,
    ) -> OutboundText | OutboundRatingRequest:
        """The outbound message for one step, in the customer's language."""
        locale = customer.locale or self.responses.default_locale
        products = _ordered_products(session, order)
        values = {
            "shop": self.shop_name,
            "order": order.code,
            "greeting": self._greeting(customer.name or order.customer_name, locale),
            "product": self._product_name(products, locale),
        }
        if kind == CareKind.rating_request:
            if buttons:
                text = self.responses.render("care_rating_request", locale, **values)
                return OutboundRatingRequest(recipient_id=recipient_id, text=text,
                                             subject=f"order:{order.code}")
            return OutboundText(recipient_id=recipient_id,
                                text=self.responses.render("care_rating_request_text", locale, **values))
        reminder = reminder_type(kind)
        if reminder is not None:
            return OutboundText(recipient_id=recipient_id,
                                text=self._reminder(session, kind, reminder, order, locale, values))
        if kind == CareKind.usage_tips:
            return OutboundText(recipient_id=recipient_id, text=self._usage_tips(products, locale, values))
        key = {CareKind.thank_you: "care_thank_you", CareKind.check_in: "care_check_in"}[CareKind(kind)]
        return OutboundText(recipient_id=recipient_id, text=self.responses.render(key, locale, **values))

    def nps_text(self, session: Session, order: Order | None, customer: Customer) -> str:
        """The NPS question (0–10) in the customer's language; buttons or not, it reads the same."""
        locale = customer.locale or self.responses.default_locale
        name = customer.name or (order.customer_name if order is not None else None)
        return self.responses.render("care_nps", locale, shop=self.shop_name,
                                     greeting=self._greeting(name, locale))

    def template_values(self, session: Session, order: Order, customer: Customer, address: str) -> dict[str, str]:
        """What a platform's registered template (ZNS) can be filled with, for one order."""
        locale = customer.locale or self.responses.default_locale
        delivered = order.delivered_at
        return {
            "customer_name": (customer.name or order.customer_name or "").strip(),
            "order_code": order.code,
            "product_name": self._product_name(_ordered_products(session, order), locale),
            "delivered_date": delivered.astimezone(self.timezone).strftime("%d/%m/%Y") if delivered else "",
            "shop_name": self.shop_name,
            "order_total": str(order.total_vnd),
            "phone": address,
        }

    def _reminder(self, session: Session, kind: str, reminder: str, order: Order, locale: str,
                  values: dict[str, str]) -> str:
        """A maintenance reminder (the product's own words from the shop data) or a warranty-expiry
        notice; the send-time checks made sure its step and warranty still exist."""
        if reminder == "maintenance":
            product, step = maintenance_step(session, order, kind)
            text = step.get(f"text_{locale}") or step["text_vi"]
            product_name = self._product_name([({}, product)], locale)
            return self.responses.render("care_maintenance", locale, **{**values, "product": product_name,
                                                                       "text": text})
        warranty, product = expiring_warranty(session, order, kind)
        ends = warranty.ends_at.astimezone(self.timezone).strftime("%d/%m/%Y")
        return self.responses.render("care_warranty_expiry", locale, **{
            **values, "product": self._product_name([({}, product)], locale), "serial": warranty.serial,
            "date": ends})

    def _greeting(self, name: str | None, locale: str) -> str:
        if name and name.strip():
            return self.responses.render("care_greeting_named", locale, name=name.strip())
        return self.responses.render("care_greeting", locale)

    def _product_name(self, products: list[tuple[dict[str, Any], Product | None]], locale: str) -> str:
        if not products:
            return self.responses.render("care_product_fallback", locale)
        line, product = products[0]
        if product is not None:
            return (product.name_en if locale == "en" and product.name_en else product.name) or product.sku
        fallback = self.responses.render("care_product_fallback", locale)
        return str(line.get("name") or line.get("sku") or fallback)

    def _usage_tips(self, products: list[tuple[dict[str, Any], Product | None]], locale: str,
                    values: dict[str, str]) -> str:
        for line, product in products:
            entry = self.usage_tip_for(line, product)
            if entry is None:
                continue
            tip = entry.answer.get(locale) or entry.answer.get(self.responses.default_locale) \
                or next(iter(entry.answer.values()))
            names = {"product": self._product_name([(line, product)], locale)}
            text = self.responses.render("care_usage_tips", locale, **{**values, **names, "tip": tip})
            if entry.links:
                link = entry.links[0]
                text += "\n" + self.responses.render("care_usage_tips_link", locale, title=link.title,
                                                     url=link.url)
            return text
        return self.responses.render("care_usage_tips_generic", locale, **values)

    def usage_tip_for(self, line: dict[str, Any], product: Product | None) -> FaqEntry | None:
        """The product-usage FAQ answer whose keywords best match the product's names, if any match."""
        names = [str(line.get("name") or ""), str(line.get("sku") or "")]
        if product is not None:
            names += [product.name, product.name_en or "", product.category or ""]
        folded = fold(" ".join(names))
        best, best_score = None, 0
        for entry in self.knowledge.by_intent.get(self.usage_intent, []):
            score = sum(fold(keyword) in folded for keyword in entry.keywords)
            if score > best_score:  # the first entry wins a tie: FAQ files list the basics first
                best, best_score = entry, score
        return best


def _ordered_products(session: Session, order: Order) -> list[tuple[dict[str, Any], Product | None]]:
    lines = []
    for line in order.items:
        sku = line.get("sku")
        product = session.exec(select(Product).where(Product.sku == sku)).first() if sku else None
        lines.append((line, product))
    return lines

"""Orders, products and warranties: loading the demo shop and looking things up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from helpdesk.audit import service as audit
from helpdesk.core.db import utcnow
from helpdesk.shop.models import Order, OrderStatus, Product, Warranty


def add_months(moment, months: int):
    """The same day ``months`` later (clamped to the month's last day)."""
    import calendar

    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def load_shop_file(session: Session, path: Path) -> dict[str, int]:
    """Insert or update the products, orders and warranties described in a shop YAML file."""
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    counts = {"products": 0, "orders": 0, "warranties": 0}
    products: dict[str, Product] = {}
    for item in document.get("products", []):
        product = session.exec(select(Product).where(Product.sku == item["sku"])).first() or Product(sku=item["sku"],
                                                                                                      name="")
        product.name = item["name"]
        product.name_en = item.get("name_en")
        product.category = item.get("category")
        product.warranty_months = int(item.get("warranty_months", 12))
        session.add(product)
        products[product.sku] = product
        counts["products"] += 1
    session.flush()
    now = utcnow()
    for item in document.get("orders", []):
        order = session.exec(select(Order).where(Order.code == item["code"])).first() or Order(code=item["code"],
                                                                                               phone="")
        order.phone = str(item["phone"])
        order.customer_name = item.get("customer_name")
        order.status = OrderStatus(item.get("status", "pending"))
        order.items = item.get("items", [])
        order.total_vnd = int(item.get("total_vnd", 0))
        if order.status == OrderStatus.delivered:
            order.delivered_at = order.delivered_at or now - timedelta(days=int(item.get("delivered_days_ago", 0)))
        session.add(order)
        session.flush()
        counts["orders"] += 1
        for line in order.items:
            serial = line.get("serial")
            product = products.get(line.get("sku")) or session.exec(
                select(Product).where(Product.sku == line.get("sku"))).first()
            if not serial or product is None:
                continue
            warranty = session.exec(select(Warranty).where(Warranty.serial == serial)).first()
            starts = order.delivered_at or now
            if warranty is None:
                warranty = Warranty(serial=serial, product_id=product.id, order_id=order.id, starts_at=starts,
                                    ends_at=add_months(starts, product.warranty_months))
                session.add(warranty)
                counts["warranties"] += 1
    audit.record(session, "shop_data_loaded", "shop", None, source=str(path), **counts)
    return counts

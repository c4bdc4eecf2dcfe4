"""The bot's view of the shop's orders and warranties, read from the database."""

from __future__ import annotations

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot.ports import OrderView, ProductView, WarrantyView
from helpdesk.shop.models import Order, Product, Warranty


def normalise_order_code(code: str) -> str:
    """Order codes compare upper-case, without a leading '#' or spaces."""
    return code.strip().lstrip("#").replace(" ", "").upper()


def _order_view(order: Order) -> OrderView:
    return OrderView(
        code=order.code, phone=order.phone, status=order.status,
        items=tuple(str(line.get("name") or line.get("sku")) for line in order.items),
        total_vnd=order.total_vnd, delivered_at=order.delivered_at, created_at=order.created_at,
    )


def _warranty_view(session: Session, warranty: Warranty) -> WarrantyView:
    product = session.get(Product, warranty.product_id)
    order = session.get(Order, warranty.order_id) if warranty.order_id else None
    return WarrantyView(serial=warranty.serial, product_name=product.name if product else "",
                        starts_at=warranty.starts_at, ends_at=warranty.ends_at,
                        order_code=order.code if order else None, phone=order.phone if order else None)


class DatabaseShopDirectory:
    """Implements bot.ports.ShopDirectory on CareDesk's tables."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def _order_by_code(self, code: str) -> OrderView | None:
        with Session(self._engine) as session:
            order = session.exec(select(Order).where(Order.code == normalise_order_code(code))).first()
            return _order_view(order) if order else None

    def _warranty_by_serial(self, serial: str) -> WarrantyView | None:
        with Session(self._engine) as session:
            warranty = session.exec(select(Warranty).where(Warranty.serial == serial.strip().upper())).first()
            return _warranty_view(session, warranty) if warranty else None

    def _warranties_for_order(self, code: str) -> list[WarrantyView]:
        with Session(self._engine) as session:
            order = session.exec(select(Order).where(Order.code == normalise_order_code(code))).first()
            if order is None:
                return []
            rows = session.exec(select(Warranty).where(Warranty.order_id == order.id)).all()
            return [_warranty_view(session, warranty) for warranty in rows]

    def _orders_for_phone(self, phone: str) -> list[OrderView]:
        with Session(self._engine) as session:
            rows = session.exec(select(Order).where(Order.phone == phone).order_by(col(Order.created_at).desc()))
            return [_order_view(order) for order in rows]

    def _products(self) -> list[ProductView]:
        with Session(self._engine) as session:
            rows = session.exec(select(Product).order_by(col(Product.id))).all()
            return [ProductView(sku=p.sku, name=p.name, name_en=p.name_en, category=p.category,
                                warranty_months=p.warranty_months, price_vnd=p.price_vnd, stock=p.stock)
                    for p in rows]

    async def products(self) -> list[ProductView]:
        """The catalog, in the order products were added."""
        return await to_thread.run_sync(self._products)

    async def order_by_code(self, code: str) -> OrderView | None:
        """The order with this code, if any."""
        return await to_thread.run_sync(self._order_by_code, code)

    async def warranty_by_serial(self, serial: str) -> WarrantyView | None:
        """The warranty of this serial, if any."""
        return await to_thread.run_sync(self._warranty_by_serial, serial)

    async def warranties_for_order(self, code: str) -> list[WarrantyView]:
        """Warranties of the order's units."""
        return await to_thread.run_sync(self._warranties_for_order, code)

    async def orders_for_phone(self, phone: str) -> list[OrderView]:
        """Orders placed with this phone, newest first."""
        return await to_thread.run_sync(self._orders_for_phone, phone)

"""What the shop sells: products, orders and warranties."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field
from helpdesk.core.db import UTCDateTime


class OrderStatus(StrEnum):
    """Where an order is in its life."""

    pending = "pending"
    confirmed = "confirmed"
    in_transit = "in_transit"
    delivered = "delivered"
    cancelled = "cancelled"
    returned = "returned"


class Product(SQLModel, table=True):
    """An item the shop sells."""

    __tablename__ = "products"

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(max_length=64, unique=True, index=True)
    name: str = Field(max_length=200)
    name_en: str | None = Field(default=None, max_length=200)
    category: str | None = Field(default=None, max_length=100)
    warranty_months: int = 12
    #: maintenance reminders: [{"every_months": 3, "text_vi": "...", "text_en": "..."}] (see care/reminders.py)
    care_schedule: list[dict[str, Any]] = json_field(default_factory=list)
    #: the shop's current price (None: not given, the bot then offers a person for it)
    price_vnd: int | None = None
    #: units in stock (None: the catalog does not track stock)
    stock: int | None = None


class Order(SQLModel, table=True):
    """A customer's order, as the shop's order system knows it."""

    __tablename__ = "orders"
    #: retention reports read a customer's purchases in time order, with what they need of each (status,
    #: amount) in the index itself, so PostgreSQL answers from the index alone (helpdesk/reports/retention.py)
    #: a period's orders (the report's new customers) are read by time
    __table_args__ = (Index("ix_orders_phone_created", "phone", "created_at", "status", "total_vnd"),
                      Index("ix_orders_created_phone", "created_at", "phone", "status"))

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    phone: str = Field(max_length=20, index=True)
    customer_id: int | None = Field(default=None, foreign_key="customers.id", index=True)
    customer_name: str | None = Field(default=None, max_length=200)
    #: where care may write when no chat reaches the customer (from the import or the delivered API)
    email: str | None = Field(default=None, max_length=254)
    status: str = Field(default=OrderStatus.pending, max_length=16)
    items: list[dict[str, Any]] = json_field(default_factory=list)
    total_vnd: int = 0
    delivered_at: datetime | None = timestamp_field()
    created_at: datetime = created_at_field()


class Warranty(SQLModel, table=True):
    """A product unit's warranty, identified by its serial number."""

    __tablename__ = "warranties"

    id: int | None = Field(default=None, primary_key=True)
    serial: str = Field(max_length=64, unique=True, index=True)
    product_id: int = Field(foreign_key="products.id")
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    starts_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    ends_at: datetime = Field(sa_type=UTCDateTime, nullable=False)

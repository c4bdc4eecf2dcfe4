"""The shop's catalog as NLU training data: every product's names become the ``product`` lookup table
at training time (``nlu.catalog``), so a model trained after a product was added knows its name."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from helpdesk.shop.models import Product
from nlu import TrainingData
from nlu.catalog import catalog_training_data


def catalog_lookup(session: Session) -> TrainingData:
    """The ``product`` lookup table generated from the products table (empty data without products)."""
    rows = session.exec(select(Product).order_by(col(Product.id))).all()
    return catalog_training_data({"sku": p.sku, "name": p.name, "name_en": p.name_en} for p in rows)


def with_catalog(data: TrainingData, engine: Engine) -> TrainingData:
    """``data`` with the catalog's lookup table merged in (synchronous: run it in a thread)."""
    with Session(engine) as session:
        return data.merge(catalog_lookup(session))

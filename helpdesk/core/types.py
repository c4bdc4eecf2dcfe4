"""Column helpers shared by the tables of every domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Column
from sqlmodel import Field, SQLModel

from helpdesk.core.db import JSONColumn, UTCDateTime, utcnow


#: the largest id an integer key holds on every database CareDesk runs on (PostgreSQL's INTEGER);
#: a route that reads an id after its answer has begun (a streamed export) must refuse larger ones
#: up front, as the app's out-of-range handler can no longer answer then
MAX_ROW_ID = 2**31 - 1


def created_at_field(**kwargs: Any) -> Any:
    """A creation timestamp set by the application, in UTC."""
    return Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False, **kwargs)


def timestamp_field(**kwargs: Any) -> Any:
    """An optional UTC timestamp."""
    return Field(default=None, sa_type=UTCDateTime, nullable=True, **kwargs)


def json_field(default_factory: Any = dict, nullable: bool = False) -> Any:
    """A JSON document column."""
    if nullable:
        return Field(default=None, sa_column=Column(JSONColumn, nullable=True))
    return Field(default_factory=default_factory, sa_column=Column(JSONColumn, nullable=False))


def insert_values(model: type[SQLModel], **values: Any) -> dict[str, Any]:
    """The column values of a new ``model`` row for a plain INSERT: those given, and the model's
    defaults for the others, as constructing the model would fill them in (without building an ORM
    object, which on a hot path costs more than the statement). The key is left to the database."""
    row = {}
    for name, field in model.model_fields.items():
        if name in values:
            row[name] = values[name]
        elif field.default_factory is not None:
            row[name] = field.default_factory()
        elif field.default is not PydanticUndefined:
            row[name] = field.default
    if row.get("id", 0) is None:
        del row["id"]
    return row


__all__ = ["MAX_ROW_ID", "created_at_field", "timestamp_field", "json_field", "insert_values", "datetime"]

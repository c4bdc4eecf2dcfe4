"""Column helpers shared by the tables of every domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column
from sqlmodel import Field

from helpdesk.core.db import JSONColumn, UTCDateTime, utcnow


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


__all__ = ["created_at_field", "timestamp_field", "json_field", "datetime"]

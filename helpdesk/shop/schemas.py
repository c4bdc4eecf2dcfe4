"""API shapes for marking orders delivered and importing orders."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from connectors import CONNECTORS


class OrderDelivered(BaseModel):
    """The shop's order system (or an agent) says an order reached its customer."""

    #: when it was delivered; default now. Without a zone it is shop time.
    delivered_at: datetime | None = None
    #: a channel identity to reach the customer on (e.g. the chat the order was placed in)
    channel: str | None = Field(default=None, max_length=32)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _identity_is_complete(self) -> OrderDelivered:
        if (self.channel is None) != (self.external_id is None):
            raise ValueError("channel and external_id come together")
        if self.channel is not None and self.channel not in CONNECTORS:
            raise ValueError(f"unknown channel {self.channel!r}; one of {', '.join(CONNECTORS)}")
        return self


class ImportRowErrorPublic(BaseModel):
    """What is wrong with one line of the file (line 1 is the header)."""

    line: int
    error: str


class OrderImportPublic(BaseModel):
    """What an import did; with errors, nothing was imported."""

    imported: bool
    created: int = 0
    updated: int = 0
    delivered: int = 0
    care_scheduled: int = 0
    errors: list[ImportRowErrorPublic] = []

"""API shapes for marking orders delivered and importing orders."""

from __future__ import annotations

from datetime import datetime

import re

from pydantic import BaseModel, Field, field_validator, model_validator

from connectors import CONNECTORS
from helpdesk.customers.service import normalise_phone

#: an address a mail server would take: one @, no spaces, a dotted domain (the mail server has the last word)
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\"(),:;<>\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")


def normalise_email(raw: str) -> str:
    """The address with its domain in lower case; ValueError saying why it is not one."""
    text = raw.strip()
    if len(text) > 254:
        raise ValueError("an email address is at most 254 characters")
    if not _EMAIL.match(text) or ".." in text or text.startswith(".") or ".@" in text:
        raise ValueError(f"{raw!r} is not an email address")
    local, _, domain = text.rpartition("@")
    if len(local) > 64:
        raise ValueError("the part of an email address before @ is at most 64 characters")
    return f"{local}@{domain.lower()}"


class OrderDelivered(BaseModel):
    """The shop's order system (or an agent) says an order reached its customer."""

    #: when it was delivered; default now. Without a zone it is shop time.
    delivered_at: datetime | None = None
    #: a channel identity to reach the customer on (e.g. the chat the order was placed in)
    channel: str | None = Field(default=None, max_length=32)
    external_id: str | None = Field(default=None, min_length=1, max_length=128)
    #: the customer's contact details as the order system knows them now: stored on the order, so care
    #: can reach a customer no chat reaches (ZNS to the phone, email)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    name: str | None = Field(default=None, min_length=1, max_length=200)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return normalise_email(value) if value is not None else None

    @field_validator("phone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        phone = normalise_phone(value)
        if phone is None:
            raise ValueError(f"{value!r} is not a Vietnamese mobile number (10 digits starting with 0, or +84 "
                             "and 9 digits)")
        return phone

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
    """What an import did. Not imported: ``errors`` says why, by line. Imported: ``errors`` lists the lines
    left out for a malformed phone or email."""

    imported: bool
    created: int = 0
    updated: int = 0
    delivered: int = 0
    care_scheduled: int = 0
    errors: list[ImportRowErrorPublic] = []

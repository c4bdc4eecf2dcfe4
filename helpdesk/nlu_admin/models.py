"""Tables of the NLU models every process of a deployment answers with: each trained version, packed,
and the one pointer that names the active version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, ForeignKey, LargeBinary, String
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field


class NluModel(SQLModel, table=True):
    """One trained model version: its metadata and its directory packed as a tar.gz.

    ``meta`` is the model's metadata.json as stored (metrics recorded after training land here,
    not in the packed copy); ``checksum`` is the SHA-256 of ``artefact``, checked before unpacking.
    """

    __tablename__ = "nlu_models"

    id: int | None = Field(default=None, primary_key=True)
    version: str = Field(max_length=100, unique=True, index=True)
    created_at: datetime = created_at_field()
    meta: dict[str, Any] = json_field()
    artefact: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    size: int
    checksum: str = Field(max_length=64)


class NluActiveModel(SQLModel, table=True):
    """The single row (``id`` 1) naming the active version; switching it is one UPDATE, so exactly
    one version is active at any time, and the foreign key keeps the active one from being deleted."""

    __tablename__ = "nlu_active_model"

    id: int = Field(default=1, primary_key=True)
    version: str = Field(sa_column=Column(String(100), ForeignKey("nlu_models.version"), nullable=False))
    activated_at: datetime = created_at_field()

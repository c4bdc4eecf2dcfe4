"""Tables of the training loop: the training set, its change log, FAQ answer overrides, the review
queue and training jobs."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from helpdesk.core.types import created_at_field, json_field, timestamp_field


class ExampleSource(StrEnum):
    """Where a training example came from."""

    seed = "seed"  # the shipped data/nlu files, read on first use
    manual = "manual"  # typed in by an admin
    review = "review"  # a customer message labelled from the review queue
    imported = "import"  # a Rasa YAML import


class ReviewStatus(StrEnum):
    """Where a message of the review queue stands."""

    open = "open"
    labelled = "labelled"
    dismissed = "dismissed"


class ReviewReason(StrEnum):
    """Why a customer message is in the review queue."""

    low_confidence = "low_confidence"
    fallback = "fallback"
    handoff = "handoff"
    flagged = "flagged"


class JobStatus(StrEnum):
    """Where a training job stands."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


class NluIntent(SQLModel, table=True):
    """An intent of the training set; ``position`` keeps the order of the exported file."""

    __tablename__ = "nlu_intents"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100, unique=True, index=True)
    position: int = 0
    #: Rasa's intent ``metadata`` wrapped as {"value": ...}: null would not tell "absent" from "null"
    rasa_metadata: dict[str, Any] | None = json_field(nullable=True)
    created_at: datetime = created_at_field()


class NluExample(SQLModel, table=True):
    """One training example: plain text, its intent, and entity spans (character offsets)."""

    __tablename__ = "nlu_examples"
    __table_args__ = (Index("ix_nlu_examples_intent_position", "intent_id", "position"),)

    id: int | None = Field(default=None, primary_key=True)
    intent_id: int = Field(foreign_key="nlu_intents.id")
    text: str = Field(sa_type=Text)
    #: lower case without diacritics, for the search box
    folded: str = Field(default="", sa_type=Text)
    entities: list[dict[str, Any]] = json_field(default_factory=list)
    rasa_metadata: Any = json_field(nullable=True)
    position: int = 0
    #: kept out of training to test candidates on; assigned once, so every candidate is tested alike
    holdout: bool = Field(default=False, index=True)
    source: str = Field(default=ExampleSource.manual, max_length=16)
    created_by: int | None = None
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class NluVocabulary(SQLModel, table=True):
    """A Rasa ``synonym``, ``regex`` or ``lookup`` item: a name and its list of values."""

    __tablename__ = "nlu_vocabulary"
    __table_args__ = (UniqueConstraint("kind", "name", name="uq_nlu_vocabulary_kind_name"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=10)
    name: str = Field(max_length=255)
    entries: list[str] = json_field(default_factory=list)
    position: int = 0


class NluTrainingChange(SQLModel, table=True):
    """One change to the training set or the FAQ answers: who, when, what (before and after)."""

    __tablename__ = "nlu_training_changes"

    id: int | None = Field(default=None, primary_key=True)
    actor_type: str = Field(default="agent", max_length=16)
    actor_id: int | None = None
    action: str = Field(max_length=40, index=True)
    subject: str = Field(default="", max_length=255)
    details: dict[str, Any] = json_field()
    created_at: datetime = created_at_field(index=True)


class NluFaqAnswer(SQLModel, table=True):
    """An FAQ answer edited by an admin: overrides the data/faq entry with the same id, adds a new
    one, or hides one (``hidden``)."""

    __tablename__ = "nlu_faq_answers"

    id: int | None = Field(default=None, primary_key=True)
    faq_id: str = Field(max_length=100, unique=True, index=True)
    intent: str = Field(max_length=100, index=True)
    answer: dict[str, str] = json_field()
    keywords: list[str] = json_field(default_factory=list)
    links: list[dict[str, str]] = json_field(default_factory=list)
    hidden: bool = False
    updated_by: int | None = None
    updated_at: datetime = created_at_field()


class NluReviewItem(SQLModel, table=True):
    """A customer message the bot may have misunderstood, waiting for (or done with) an admin's label."""

    __tablename__ = "nlu_review_items"
    __table_args__ = (
        Index("ix_nlu_review_items_status_group", "status", "group_key"),
        Index("ix_nlu_review_items_status_at", "status", "message_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(unique=True)
    conversation_id: int = Field(index=True)
    channel: str = Field(max_length=32)
    text: str = Field(sa_type=Text)
    #: hash of the normalised text: near-identical messages share it and are labelled together
    group_key: str = Field(max_length=32)
    #: comma-separated ReviewReason values (a string, so SQL can filter on one portably)
    reasons: str = Field(default="", max_length=100)
    predicted_intent: str | None = Field(default=None, max_length=100)
    confidence: float | None = None
    model_version: str | None = Field(default=None, max_length=100)
    escalation_reason: str | None = Field(default=None, max_length=64)
    flagged_by: int | None = None
    status: str = Field(default=ReviewStatus.open, max_length=12)
    label: str | None = Field(default=None, max_length=100)
    decided_by: int | None = None
    decided_at: datetime | None = timestamp_field()
    message_at: datetime = created_at_field()
    created_at: datetime = created_at_field()


class NluTrainingState(SQLModel, table=True):
    """Small bookkeeping values (seeded marker, review collection cursors)."""

    __tablename__ = "nlu_training_state"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(default="", max_length=255)
    updated_at: datetime = created_at_field()


class NluTrainingJob(SQLModel, table=True):
    """A background retrain: its progress, the candidate it produced and how it compares."""

    __tablename__ = "nlu_training_jobs"

    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default=JobStatus.queued, max_length=12, index=True)
    stage: str = Field(default="queued", max_length=64)
    progress: float = 0.0
    requested_by: int | None = None
    data_revision: int = 0
    baseline_version: str | None = Field(default=None, max_length=100)
    candidate_version: str | None = Field(default=None, max_length=100, index=True)
    n_train: int = 0
    n_holdout: int = 0
    n_review: int = 0
    comparison: dict[str, Any] | None = json_field(nullable=True)
    #: what the admin did with the candidate: activated or discarded
    decision: str | None = Field(default=None, max_length=12)
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = created_at_field()
    started_at: datetime | None = timestamp_field()
    finished_at: datetime | None = timestamp_field()
    heartbeat_at: datetime | None = timestamp_field()

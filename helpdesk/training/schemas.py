"""API shapes of the training loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field


class IntentPublic(BaseModel):
    """An intent with its example counts and how many FAQ answers the bot has for it."""

    name: str
    examples: int
    holdout: int
    from_review: int
    faq_answers: int


class IntentsPublic(BaseModel):
    """Every intent."""

    data: list[IntentPublic]
    count: int


class IntentCreate(BaseModel):
    """A new intent."""

    name: str = Field(min_length=1, max_length=100)


class EntitySpan(BaseModel):
    """An entity in an example, by character offsets into its text (Rasa's annotation)."""

    entity: str = Field(min_length=1, max_length=64)
    start: int = Field(ge=0)
    end: int = Field(ge=1)
    value: str | None = None
    role: str | None = None
    group: str | None = None


class ExampleBase(BaseModel):
    """What an example is made of."""

    intent: str = Field(min_length=1, max_length=100)
    text: str = Field(min_length=1, max_length=2000)


class ExampleCreate(ExampleBase):
    """A new example."""

    entities: list[EntitySpan] = []


class ExampleUpdate(BaseModel):
    """An edit: new text or entities, or a move to another intent."""

    text: str | None = Field(default=None, min_length=1, max_length=2000)
    intent: str | None = Field(default=None, min_length=1, max_length=100)
    entities: list[EntitySpan] | None = None


class ExamplePublic(ExampleBase):
    """A stored example; ``holdout`` ones are kept aside to test candidates on."""

    id: int
    entities: list[dict[str, Any]]
    holdout: bool
    source: str
    created_at: datetime
    updated_at: datetime


class ExamplesPublic(BaseModel):
    """A page of examples and how many match."""

    data: list[ExamplePublic]
    count: int


class VocabularyPublic(BaseModel):
    """A synonym (name = canonical value), regex or lookup table."""

    kind: Literal["synonym", "regex", "lookup"]
    name: str
    entries: list[str]


class VocabularyUpdate(BaseModel):
    """The values of a synonym, regex or lookup table."""

    entries: list[str] = Field(min_length=1)


class FaqLinkModel(BaseModel):
    """A link shown under an answer."""

    title: str = Field(min_length=1, max_length=200)
    url: str = Field(min_length=1, max_length=1000)


class FaqAnswerUpdate(BaseModel):
    """An FAQ answer as an admin writes it."""

    intent: str = Field(min_length=1, max_length=100)
    answer: dict[str, str] = Field(description='Text per language, e.g. {"vi": "...", "en": "..."}')
    keywords: list[str] = []
    links: list[FaqLinkModel] = []


class FaqAnswerPublic(FaqAnswerUpdate):
    """An FAQ answer and where it comes from: the data/faq files, edited here, or added here."""

    id: str
    origin: Literal["file", "edited", "added"]
    hidden: bool


class FaqAnswersPublic(BaseModel):
    """FAQ answers."""

    data: list[FaqAnswerPublic]
    count: int


class ImportPublic(BaseModel):
    """What an import changed; ``skipped`` lists texts already examples of another intent (merge)."""

    mode: str
    intents: int
    added: int
    updated: int
    removed: int
    unchanged: int
    skipped: list[dict[str, str]]


class ChangePublic(BaseModel):
    """One entry of the training change log."""

    id: int
    actor_type: str
    actor_id: int | None
    action: str
    subject: str
    details: dict[str, Any]
    created_at: datetime


class ChangesPublic(BaseModel):
    """A page of the change log, newest first."""

    data: list[ChangePublic]
    count: int


class ReviewMessagePublic(BaseModel):
    """A message of a review group; ``id`` (its message id) labels or dismisses it alone."""

    id: int
    message_id: int
    conversation_id: int
    channel: str
    text: str
    reasons: list[str]
    predicted_intent: str | None
    confidence: float | None
    model_version: str | None
    escalation_reason: str | None
    status: str
    label: str | None
    message_at: datetime


class ReviewGroupPublic(BaseModel):
    """Near-identical messages; label or dismiss them together through ``id``."""

    id: str
    count: int
    newest_at: datetime
    oldest_at: datetime
    texts: list[str]
    reasons: dict[str, int]
    channels: dict[str, int]
    predicted: dict[str, int]
    messages: list[ReviewMessagePublic]


class ReviewGroupsPublic(BaseModel):
    """A page of review groups, newest first, and how many groups match."""

    data: list[ReviewGroupPublic]
    count: int


class ReviewMark(BaseModel):
    """An entity marked by selecting a span of the shown message (``start``/``end``, code-point
    offsets into the label's ``text``), or by its surface ``text`` alone; applied to each text of
    the group containing it."""

    entity: str = Field(min_length=1, max_length=64)
    text: str | None = Field(default=None, min_length=1, max_length=500)
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=1)
    value: str | None = Field(default=None, max_length=500)
    role: str | None = Field(default=None, max_length=64)
    group: str | None = Field(default=None, max_length=64)


class ReviewLabel(BaseModel):
    """The intent a group (or message) means, an existing one or a new one, and entities marked in
    ``text`` (the message the page showed; the group's newest when absent)."""

    intent: str = Field(min_length=1, max_length=100)
    text: str | None = Field(default=None, max_length=2000)
    entities: list[ReviewMark] = []


class EntityNamesPublic(BaseModel):
    """Entity names the training set uses, most used first."""

    data: list[str]
    count: int


class ReviewLabelPublic(BaseModel):
    """What labelling did: examples added, moved from another intent, or already there."""

    intent: str
    messages: int
    added: list[int]
    moved: list[int]
    unchanged: list[int]
    skipped: list[str]


class ReviewDismissPublic(BaseModel):
    """How many messages left the queue."""

    dismissed: int


class ReviewFlag(BaseModel):
    """An agent's "the bot misunderstood this"."""

    message_id: int
    note: str | None = Field(default=None, max_length=500)


class ReviewFlagPublic(BaseModel):
    """The flagged message's place in the review queue."""

    message_id: int
    group_id: str
    status: str
    reasons: list[str]


class JobPublic(BaseModel):
    """A retrain: progress 0..1 with the stage's name; the comparison once it succeeded."""

    id: int
    status: str
    stage: str
    progress: float
    data_revision: int
    baseline_version: str | None
    candidate_version: str | None
    n_train: int
    n_holdout: int
    n_review: int
    comparison: dict[str, Any] | None
    decision: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobsPublic(BaseModel):
    """Recent retrains."""

    data: list[JobPublic]
    count: int


class ModelPublic(BaseModel):
    """A stored model version with its metrics; ``active`` answers now."""

    version: str
    created_at: str
    active: bool
    intents: int
    metrics: dict[str, Any] | None
    job_id: int | None
    decision: str | None


class ModelsPublic(BaseModel):
    """Every stored version, newest first, and the active one."""

    data: list[ModelPublic]
    count: int
    active: str | None


class ActivationPublic(BaseModel):
    """The model now answering, and the one it replaced."""

    version: str
    previous: str | None

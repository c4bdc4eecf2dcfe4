"""The NLU training set in the database, item by item: intents, examples and vocabulary, their
validation, the change log and bookkeeping values. The set as a whole (seeding, Rasa YAML export and
import, the snapshot a retrain trains on) is in ``dataset``; the train/held-out split in ``holdout``.

Services add to the session and never commit: the request (or the CLI command) commits.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from bot.knowledge import fold
from helpdesk.agents.models import Agent
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest, Conflict, NotFound
from helpdesk.training.holdout import HoldoutCounter
from helpdesk.training.models import (
    ExampleSource,
    NluExample,
    NluIntent,
    NluTrainingChange,
    NluTrainingState,
    NluVocabulary,
)
from nlu import EntityAnnotation

INTENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]{0,99}$")
#: what the pipeline answers when unsure: never an intent of the training set
RESERVED_INTENTS = frozenset({"nlu_fallback"})
ENTITY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
VOCABULARY_KINDS = ("synonym", "regex", "lookup")
MAX_EXAMPLE_CHARS = 2000


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an agent (by id), the command line, or the system."""

    type: str = "system"
    id: int | None = None

    @classmethod
    def agent(cls, agent: Agent) -> Actor:
        """The actor for a logged-in agent."""
        return cls("agent", agent.id)


CLI_ACTOR = Actor("cli")


def record_change(session: Session, actor: Actor, action: str, subject: str = "", **details: Any) -> NluTrainingChange:
    """Add one entry to the training change log (committed with the change it describes)."""
    change = NluTrainingChange(actor_type=actor.type, actor_id=actor.id, action=action, subject=subject[:255],
                               details=details)
    session.add(change)
    return change


def data_revision(session: Session) -> int:
    """A number that grows with every change to the training set (the newest change log id)."""
    return int(session.exec(select(func.max(NluTrainingChange.id))).one() or 0)


def list_changes(session: Session, limit: int = 50, offset: int = 0) -> tuple[list[NluTrainingChange], int]:
    """The change log, newest first."""
    total = session.exec(select(func.count()).select_from(NluTrainingChange)).one()
    rows = session.exec(select(NluTrainingChange).order_by(col(NluTrainingChange.id).desc())
                        .offset(offset).limit(limit)).all()
    return list(rows), int(total)


# ---------------------------------------------------------------------------------------------
# Text checks


def clean_text(text: str) -> str:
    """An example's text as stored: NFC (what the parser sees), trimmed."""
    return unicodedata.normalize("NFC", text).strip()


def check_text(text: str) -> str:
    """Refuse texts that cannot be a training example or would not survive a Rasa YAML round trip."""
    text = clean_text(text)
    if not text:
        raise BadRequest("the example text is empty")
    if len(text) > MAX_EXAMPLE_CHARS:
        raise BadRequest(f"the example text is longer than {MAX_EXAMPLE_CHARS} characters")
    if "[" in text or "]" in text:
        # Square brackets mark entities in Rasa's format: a bare one makes the file unreadable.
        raise BadRequest("the example text may not contain [ or ] (they mark entities in Rasa YAML)")
    return text


def without_brackets(text: str) -> str:
    """A customer's text made safe for Rasa YAML: square brackets become parentheses."""
    return text.replace("[", "(").replace("]", ")")


def check_intent_name(name: str) -> str:
    """An intent name as Rasa and the bot's routers accept it."""
    name = name.strip()
    if not INTENT_NAME.match(name):
        raise BadRequest("an intent name starts with a letter and has only letters, digits, _ . - / "
                         "(at most 100 characters)")
    if name in RESERVED_INTENTS:
        raise BadRequest(f"{name!r} is reserved for what the bot answers when unsure; choose a real intent")
    return name


def check_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate entity spans against the text; returns them normalised and sorted."""
    cleaned = []
    for raw in entities:
        entity = str(raw.get("entity") or "").strip()
        if not ENTITY_NAME.match(entity):
            raise BadRequest(f"invalid entity name {entity!r}")
        try:
            start, end = int(raw["start"]), int(raw["end"])
        except (KeyError, TypeError, ValueError):
            raise BadRequest("each entity needs integer start and end offsets") from None
        if not 0 <= start < end <= len(text):
            raise BadRequest(f"entity {entity!r} span {start}..{end} is outside the text")
        surface = text[start:end]
        if surface != surface.strip():
            raise BadRequest(f"entity {entity!r} span starts or ends with a space")
        value = raw.get("value")
        value = surface if value in (None, "") else str(value)
        span = {"entity": entity, "value": value, "start": start, "end": end}
        for key in ("role", "group"):
            if raw.get(key) not in (None, ""):
                span[key] = str(raw[key])
        cleaned.append(span)
    cleaned.sort(key=lambda e: (e["start"], e["end"]))
    for before, after in itertools.pairwise(cleaned):
        if after["start"] < before["end"]:
            raise BadRequest("entity spans overlap")
    return cleaned


def annotations(entities: list[dict[str, Any]]) -> list[EntityAnnotation]:
    return [EntityAnnotation(e["entity"], str(e["value"]), int(e["start"]), int(e["end"]), e.get("role"),
                             e.get("group")) for e in entities]


def entity_dicts(annotations: list[EntityAnnotation]) -> list[dict[str, Any]]:
    spans = []
    for a in annotations:
        span: dict[str, Any] = {"entity": a.entity, "value": a.value, "start": a.start, "end": a.end}
        if a.role is not None:
            span["role"] = a.role
        if a.group is not None:
            span["group"] = a.group
        spans.append(span)
    return spans


# ---------------------------------------------------------------------------------------------
# Bookkeeping values


def read_state(session: Session, key: str) -> str | None:
    row = session.get(NluTrainingState, key)
    return row.value if row is not None else None


def set_state(session: Session, key: str, value: str) -> None:
    """Store a bookkeeping value."""
    row = session.get(NluTrainingState, key)
    if row is None:
        session.add(NluTrainingState(key=key, value=value))
    else:
        row.value = value
        row.updated_at = utcnow()


def get_state(session: Session, key: str, default: str = "") -> str:
    """Read a bookkeeping value."""
    value = read_state(session, key)
    return default if value is None else value


# ---------------------------------------------------------------------------------------------
# Intents


@dataclass
class IntentSummary:
    """An intent with how many examples it has (and how many are held out)."""

    name: str
    examples: int
    holdout: int
    from_review: int


def list_intents(session: Session) -> list[IntentSummary]:
    """Every intent in file order, with example counts."""
    intents = session.exec(select(NluIntent).order_by(NluIntent.position, NluIntent.id)).all()
    counts = session.exec(
        select(NluExample.intent_id, NluExample.holdout, NluExample.source, func.count())
        .group_by(NluExample.intent_id, NluExample.holdout, NluExample.source)
    ).all()
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for intent_id, holdout, source, count in counts:
        totals[intent_id][0] += count
        totals[intent_id][1] += count if holdout else 0
        totals[intent_id][2] += count if source == ExampleSource.review else 0
    return [IntentSummary(i.name, *totals[i.id]) for i in intents]


def find_intent(session: Session, name: str) -> NluIntent | None:
    """The intent with this name, if any."""
    return session.exec(select(NluIntent).where(NluIntent.name == name)).first()


def get_intent(session: Session, name: str) -> NluIntent:
    """The intent with this name; NotFound otherwise."""
    intent = find_intent(session, name)
    if intent is None:
        raise NotFound(f"intent {name!r} not found")
    return intent


def ensure_intent(session: Session, actor: Actor, name: str) -> NluIntent:
    """The intent with this name, created (and logged) if new."""
    name = check_intent_name(name)
    intent = find_intent(session, name)
    if intent is None:
        last = session.exec(select(func.max(NluIntent.position))).one()
        intent = NluIntent(name=name, position=(last if last is not None else -1) + 1)
        session.add(intent)
        session.flush()
        record_change(session, actor, "intent_added", name)
    return intent


def create_intent(session: Session, actor: Actor, name: str) -> NluIntent:
    """Add a new, empty intent."""
    if find_intent(session, check_intent_name(name)) is not None:
        raise Conflict(f"intent {name!r} already exists")
    return ensure_intent(session, actor, name)


def delete_intent(session: Session, actor: Actor, name: str, move_to: str | None = None) -> int:
    """Delete an intent; its examples move to ``move_to`` or are deleted. Returns how many examples."""
    intent = get_intent(session, name)
    examples = session.exec(select(NluExample).where(NluExample.intent_id == intent.id)
                            .order_by(NluExample.position, NluExample.id)).all()
    if move_to is not None:
        if move_to == name:
            raise BadRequest("cannot move an intent's examples to itself")
        target = ensure_intent(session, actor, move_to)
        position = next_position(session, target.id)
        for example in examples:
            example.intent_id, example.position, example.updated_at = target.id, position, utcnow()
            position += 1
    else:
        for example in examples:
            session.delete(example)
    session.flush()
    session.delete(intent)
    record_change(session, actor, "intent_deleted", name, examples=len(examples), moved_to=move_to)
    return len(examples)


# ---------------------------------------------------------------------------------------------
# Examples


@dataclass
class ExampleView:
    """An example with its intent's name."""

    example: NluExample
    intent: str


def next_position(session: Session, intent_id: int) -> int:
    last = session.exec(select(func.max(NluExample.position)).where(NluExample.intent_id == intent_id)).one()
    return (last if last is not None else -1) + 1


def search_examples(session: Session, q: str = "", intent: str | None = None, limit: int = 50,
                    offset: int = 0) -> tuple[list[ExampleView], int]:
    """Examples whose text contains ``q`` (ignoring case and diacritics), optionally of one intent."""
    query = select(NluExample, NluIntent.name).join(NluIntent, NluIntent.id == NluExample.intent_id)
    count = select(func.count()).select_from(NluExample).join(NluIntent, NluIntent.id == NluExample.intent_id)
    conditions = []
    if q.strip():
        needle = fold(q.strip()).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(col(NluExample.folded).like(f"%{needle}%", escape="\\"))
    if intent:
        conditions.append(NluIntent.name == intent)
    for condition in conditions:
        query, count = query.where(condition), count.where(condition)
    rows = session.exec(query.order_by(NluIntent.position, NluExample.position, NluExample.id)
                        .offset(offset).limit(limit)).all()
    return [ExampleView(example, name) for example, name in rows], int(session.exec(count).one())


def get_example(session: Session, example_id: int) -> ExampleView:
    """One example; NotFound otherwise."""
    row = session.exec(select(NluExample, NluIntent.name).join(NluIntent, NluIntent.id == NluExample.intent_id)
                       .where(NluExample.id == example_id)).first()
    if row is None:
        raise NotFound(f"example {example_id} not found")
    return ExampleView(*row)


def find_examples_by_text(session: Session, text: str) -> list[ExampleView]:
    """Examples with exactly this text, under any intent."""
    rows = session.exec(select(NluExample, NluIntent.name).join(NluIntent, NluIntent.id == NluExample.intent_id)
                        .where(NluExample.folded == fold(text))).all()
    return [ExampleView(example, name) for example, name in rows if example.text == text]


def _example_record(view: ExampleView) -> dict[str, Any]:
    return {"id": view.example.id, "intent": view.intent, "text": view.example.text,
            "entities": view.example.entities}


def add_example(session: Session, actor: Actor, intent: str, text: str, entities: list[dict[str, Any]] | None = None,
                source: str = ExampleSource.manual, holdout: HoldoutCounter | None = None) -> ExampleView:
    """Add an example (Conflict when the same text is already an example)."""
    text = check_text(text)
    spans = check_entities(text, entities or [])
    existing = find_examples_by_text(session, text)
    if existing:
        raise Conflict(f"this text is already an example of intent {existing[0].intent!r} "
                       f"(example {existing[0].example.id})")
    target = ensure_intent(session, actor, intent)
    counter = holdout or HoldoutCounter(session)
    example = NluExample(intent_id=target.id, text=text, folded=fold(text), entities=spans,
                         position=next_position(session, target.id), holdout=counter.next(target.id, source),
                         source=source, created_by=actor.id if actor.type == "agent" else None)
    session.add(example)
    session.flush()
    view = ExampleView(example, target.name)
    record_change(session, actor, "example_added", text, example=_example_record(view), source=str(source))
    return view


def update_example(session: Session, actor: Actor, example_id: int, *, text: str | None = None,
                   intent: str | None = None, entities: list[dict[str, Any]] | None = None) -> ExampleView:
    """Edit an example's text and entities, or move it to another intent."""
    view = get_example(session, example_id)
    before = _example_record(view)
    example = view.example
    if text is not None:
        text = check_text(text)
        clash = [other for other in find_examples_by_text(session, text) if other.example.id != example.id]
        if clash:
            raise Conflict(f"this text is already example {clash[0].example.id} of intent {clash[0].intent!r}")
        if text != example.text and entities is None:
            entities = [] if example.entities else None  # old offsets do not fit a new text
        example.text, example.folded = text, fold(text)
    if entities is not None:
        example.entities = check_entities(example.text, entities)
    action = "example_edited"
    if intent is not None and intent != view.intent:
        target = ensure_intent(session, actor, intent)
        example.intent_id, example.position = target.id, next_position(session, target.id)
        view = ExampleView(example, target.name)
        action = "example_moved" if text is None and entities is None else "example_edited_and_moved"
    example.updated_at = utcnow()
    session.add(example)
    session.flush()
    record_change(session, actor, action, example.text, before=before, after=_example_record(view))
    return view


def delete_example(session: Session, actor: Actor, example_id: int) -> None:
    """Remove an example."""
    view = get_example(session, example_id)
    record_change(session, actor, "example_deleted", view.example.text, before=_example_record(view))
    session.delete(view.example)
    session.flush()


# ---------------------------------------------------------------------------------------------
# Vocabulary (synonyms, regexes, lookup tables)


def list_vocabulary(session: Session) -> list[NluVocabulary]:
    """Synonyms, regexes and lookup tables in file order."""
    rows = session.exec(select(NluVocabulary)).all()
    return sorted(rows, key=lambda row: (VOCABULARY_KINDS.index(row.kind), row.position, row.id))


def save_vocabulary(session: Session, actor: Actor, kind: str, name: str, entries: list[str]) -> NluVocabulary:
    """Create or replace one synonym, regex or lookup item."""
    if kind not in VOCABULARY_KINDS:
        raise BadRequest(f"kind must be one of {', '.join(VOCABULARY_KINDS)}")
    name = name.strip()
    entries = [entry.strip() for entry in entries if entry.strip()]
    if not name or not entries:
        raise BadRequest("a name and at least one value are needed")
    if kind == "regex":
        for pattern in entries:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise BadRequest(f"invalid regular expression {pattern!r}: {exc}") from None
    row = session.exec(select(NluVocabulary).where(NluVocabulary.kind == kind, NluVocabulary.name == name)).first()
    before = list(row.entries) if row is not None else None
    if row is None:
        last = session.exec(select(func.max(NluVocabulary.position)).where(NluVocabulary.kind == kind)).one()
        row = NluVocabulary(kind=kind, name=name, position=(last if last is not None else -1) + 1)
    row.entries = list(dict.fromkeys(entries))
    session.add(row)
    session.flush()
    record_change(session, actor, f"{kind}_saved", name, before=before, after=row.entries)
    return row


def delete_vocabulary(session: Session, actor: Actor, kind: str, name: str) -> None:
    """Remove one synonym, regex or lookup item."""
    row = session.exec(select(NluVocabulary).where(NluVocabulary.kind == kind, NluVocabulary.name == name)).first()
    if row is None:
        raise NotFound(f"{kind} {name!r} not found")
    record_change(session, actor, f"{kind}_deleted", name, before=row.entries)
    session.delete(row)
    session.flush()


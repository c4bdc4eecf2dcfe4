"""The NLU training set in the database: seeding from data/nlu, intents and examples, vocabulary,
the change log, Rasa YAML export and import, and the train/held-out split.

Services add to the session and never commit: the request (or the CLI command) commits.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import tempfile
import threading
import unicodedata
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from bot.knowledge import fold
from helpdesk.agents.models import Agent
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest, Conflict, NotFound
from helpdesk.training.models import (
    ExampleSource,
    NluExample,
    NluIntent,
    NluReviewItem,
    NluTrainingChange,
    NluTrainingState,
    NluVocabulary,
    ReviewStatus,
)
from nlu import EntityAnnotation, TrainingData, TrainingDataError, TrainingExample, load_training_data
from nlu.training_data import LookupTable, RegexFeature

#: share of each intent's examples kept aside to test candidates on
HOLDOUT_FRACTION = 0.15
#: fixed seed of the held-out draw, so the split is the same for every retrain
HOLDOUT_SEED = "caredesk-holdout-v1"
#: intents with fewer examples keep them all for training
MIN_EXAMPLES_FOR_HOLDOUT = 5
SEEDED_KEY = "seeded"
INTENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_./-]{0,99}$")
#: what the pipeline answers when unsure: never an intent of the training set
RESERVED_INTENTS = frozenset({"nlu_fallback"})
ENTITY_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")
VOCABULARY_KINDS = ("synonym", "regex", "lookup")
MAX_EXAMPLE_CHARS = 2000

_seed_lock = threading.Lock()


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


def _annotations(entities: list[dict[str, Any]]) -> list[EntityAnnotation]:
    return [EntityAnnotation(e["entity"], str(e["value"]), int(e["start"]), int(e["end"]), e.get("role"),
                             e.get("group")) for e in entities]


def _entity_dicts(annotations: list[EntityAnnotation]) -> list[dict[str, Any]]:
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
# Held-out split


def holdout_rank(text: str) -> int:
    """A fixed pseudo-random rank of a text (seeded), so the held-out draw never changes."""
    return int.from_bytes(hashlib.sha256(f"{HOLDOUT_SEED}\n{text}".encode()).digest()[:8], "big")


def draw_holdout(texts: list[str]) -> set[int]:
    """Indexes of one intent's examples to hold out: the same share of every intent (stratified)."""
    if len(texts) < MIN_EXAMPLES_FOR_HOLDOUT:
        return set()
    count = max(1, math.floor(HOLDOUT_FRACTION * len(texts) + 0.5))
    ranked = sorted(range(len(texts)), key=lambda index: (holdout_rank(texts[index]), index))
    return set(ranked[:count])


class HoldoutCounter:
    """Decides, example by example, whether a new one is held out, keeping each intent at the share.

    A decision is never revisited: an example trained on stays in training, so an earlier model
    trained by the loop never saw a held-out example and the comparison with it stays fair.
    """

    def __init__(self, session: Session):
        rows = session.exec(
            select(NluExample.intent_id, NluExample.holdout, func.count())
            .where(NluExample.source != ExampleSource.review)
            .group_by(NluExample.intent_id, NluExample.holdout)
        ).all()
        self.total: dict[int, int] = defaultdict(int)
        self.held: dict[int, int] = defaultdict(int)
        for intent_id, holdout, count in rows:
            self.total[intent_id] += count
            if holdout:
                self.held[intent_id] += count

    def next(self, intent_id: int, source: str) -> bool:
        """Whether the next example added to the intent is held out."""
        if source == ExampleSource.review:
            # Labelled review messages are the review set: they must be learnt, and are tested there.
            return False
        self.total[intent_id] += 1
        total = self.total[intent_id]
        if total >= MIN_EXAMPLES_FOR_HOLDOUT and math.floor(HOLDOUT_FRACTION * total) > self.held[intent_id]:
            self.held[intent_id] += 1
            return True
        return False


# ---------------------------------------------------------------------------------------------
# Seeding


def _state(session: Session, key: str) -> str | None:
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
    value = _state(session, key)
    return default if value is None else value


#: engines whose database is known to be seeded (weak: a disposed engine must not be remembered)
_seeded_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def ensure_seeded(engine: Engine, data_dir: Path) -> None:
    """On first use, fill the training set from the shipped data/nlu files (once per database)."""
    if engine in _seeded_engines:
        return
    with _seed_lock:
        if engine in _seeded_engines:
            return
        with Session(engine, expire_on_commit=False) as session:
            if _state(session, SEEDED_KEY) is None:
                nlu_dir = Path(data_dir) / "nlu"
                data = load_training_data([nlu_dir]) if nlu_dir.is_dir() else TrainingData()
                # The marker goes in first: a second process seeding at the same moment fails here.
                session.add(NluTrainingState(key=SEEDED_KEY, value=utcnow().isoformat()))
                try:
                    session.flush()
                except IntegrityError:
                    session.rollback()
                else:
                    counts = _replace_all(session, data, ExampleSource.seed)
                    record_change(session, Actor(), "seeded", str(nlu_dir), **counts)
                    session.commit()
        _seeded_engines.add(engine)


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
        position = _next_position(session, target.id)
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


def _next_position(session: Session, intent_id: int) -> int:
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
                         position=_next_position(session, target.id), holdout=counter.next(target.id, source),
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
        example.intent_id, example.position = target.id, _next_position(session, target.id)
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


# ---------------------------------------------------------------------------------------------
# The whole set: TrainingData, export, import


def _training_example(example: NluExample, intent: str) -> TrainingExample:
    return TrainingExample(example.text, intent, _annotations(example.entities), example.rasa_metadata)


def _vocabulary_parts(session: Session) -> tuple[dict[str, list[str]], list[RegexFeature], list[LookupTable]]:
    synonyms: dict[str, list[str]] = {}
    regexes: list[RegexFeature] = []
    lookups: list[LookupTable] = []
    for row in list_vocabulary(session):
        if row.kind == "synonym":
            synonyms[row.name] = list(row.entries)
        elif row.kind == "regex":
            regexes.append(RegexFeature(row.name, list(row.entries)))
        else:
            lookups.append(LookupTable(row.name, list(row.entries)))
    return synonyms, regexes, lookups


def _ordered_examples(session: Session) -> list[tuple[NluExample, NluIntent]]:
    return list(session.exec(
        select(NluExample, NluIntent).join(NluIntent, NluIntent.id == NluExample.intent_id)
        .order_by(NluIntent.position, NluIntent.id, NluExample.position, NluExample.id)
    ).all())


def training_data(session: Session) -> TrainingData:
    """The whole training set as the NLU library's TrainingData."""
    rows = _ordered_examples(session)
    synonyms, regexes, lookups = _vocabulary_parts(session)
    intent_metadata = {}
    for intent in session.exec(select(NluIntent).order_by(NluIntent.position, NluIntent.id)).all():
        if intent.rasa_metadata is not None:
            intent_metadata[intent.name] = intent.rasa_metadata.get("value")
    return TrainingData(examples=[_training_example(example, intent.name) for example, intent in rows],
                        synonyms=synonyms, regexes=regexes, lookups=lookups, intent_metadata=intent_metadata)


def export_yaml(session: Session) -> str:
    """The training set as one Rasa 3 YAML file (what ``rasa train nlu`` reads)."""
    return training_data(session).to_yaml()


def parse_yaml(text: str) -> TrainingData:
    """Read an uploaded Rasa YAML document; BadRequest naming the line when it is not valid."""
    with tempfile.TemporaryDirectory(prefix="caredesk-import-") as directory:
        path = Path(directory) / "upload.yml"
        path.write_text(text, encoding="utf-8")
        try:
            return load_training_data([path])
        except TrainingDataError as exc:
            where = f"line {exc.line}: " if exc.line is not None else ""
            raise BadRequest(f"not valid Rasa NLU YAML: {where}{exc.message}") from None


@dataclass
class ImportSummary:
    """What an import changed."""

    mode: str
    intents: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)


def _replace_all(session: Session, data: TrainingData, source: str) -> dict[str, int]:
    """Make the stored set exactly ``data`` (in its order), keeping the rows (and held-out marks)
    of examples whose text stays."""
    intents = {intent.name: intent for intent in session.exec(select(NluIntent)).all()}
    existing: dict[str, list[NluExample]] = defaultdict(list)
    for example in session.exec(select(NluExample).order_by(NluExample.position, NluExample.id)).all():
        existing[example.text].append(example)
    wanted = list(dict.fromkeys([*data.intents, *data.intent_metadata]))
    for position, name in enumerate(wanted):
        intent = intents.get(name)
        if intent is None:
            intent = intents[name] = NluIntent(name=name)
        intent.position = position
        intent.rasa_metadata = {"value": data.intent_metadata[name]} if name in data.intent_metadata else None
        session.add(intent)
    session.flush()
    counts = {"added": 0, "updated": 0, "unchanged": 0, "removed": 0}
    fresh: list[NluExample] = []
    positions: dict[str, int] = defaultdict(int)
    for item in data.examples:
        intent = intents[item.intent]
        spans = _entity_dicts(item.entities)
        matches = existing.get(item.text)
        if matches:
            example = matches.pop(0)
            changed = (example.intent_id != intent.id or example.entities != spans
                       or example.rasa_metadata != item.metadata)
            counts["updated" if changed else "unchanged"] += 1
            example.intent_id, example.entities, example.rasa_metadata = intent.id, spans, item.metadata
        else:
            example = NluExample(intent_id=intent.id, text=item.text, folded=fold(item.text), entities=spans,
                                 rasa_metadata=item.metadata, source=source)
            fresh.append(example)
            counts["added"] += 1
        example.position = positions[item.intent]
        positions[item.intent] += 1
        session.add(example)
    for leftovers in existing.values():
        for example in leftovers:
            session.delete(example)
            counts["removed"] += 1
    session.flush()
    for name, intent in intents.items():
        if name not in wanted:
            session.delete(intent)
    session.flush()
    _assign_holdout(session, fresh)
    session.exec(delete(NluVocabulary))
    _add_vocabulary(session, data)
    session.flush()
    return counts


def _assign_holdout(session: Session, fresh: list[NluExample]) -> None:
    """Hold out new examples: a seeded draw for an intent that is all new, else one by one."""
    by_intent: dict[int, list[NluExample]] = defaultdict(list)
    for example in fresh:
        by_intent[example.intent_id].append(example)
    counter = HoldoutCounter(session)
    for intent_id, examples in by_intent.items():
        # The new rows are flushed already, not held out: take them out of the counts first.
        counter.total[intent_id] -= sum(1 for e in examples if e.source != ExampleSource.review)
        if counter.total[intent_id] == 0:
            chosen = draw_holdout([example.text for example in examples])
            for index, example in enumerate(examples):
                example.holdout = index in chosen
            counter.total[intent_id] = len(examples)
            counter.held[intent_id] = len(chosen)
        else:
            for example in examples:
                example.holdout = counter.next(intent_id, example.source)
        session.add_all(examples)


def _add_vocabulary(session: Session, data: TrainingData) -> None:
    for position, (canonical, variants) in enumerate(data.synonyms.items()):
        session.add(NluVocabulary(kind="synonym", name=canonical, entries=list(variants), position=position))
    for position, regex in enumerate(data.regexes):
        session.add(NluVocabulary(kind="regex", name=regex.name, entries=list(regex.patterns), position=position))
    for position, lookup in enumerate(data.lookups):
        session.add(NluVocabulary(kind="lookup", name=lookup.name, entries=list(lookup.elements), position=position))


def import_yaml(session: Session, actor: Actor, text: str, mode: str = "merge") -> ImportSummary:
    """Load Rasa YAML: ``replace`` makes the set exactly the file; ``merge`` adds what is new."""
    if mode not in ("replace", "merge"):
        raise BadRequest("mode must be 'replace' or 'merge'")
    data = parse_yaml(text)
    for name in data.intents:
        check_intent_name(name)
    summary = ImportSummary(mode=mode, intents=len(data.intents))
    if mode == "replace":
        counts = _replace_all(session, data, ExampleSource.imported)
        summary.added, summary.updated = counts["added"], counts["updated"]
        summary.unchanged, summary.removed = counts["unchanged"], counts["removed"]
    else:
        _merge(session, actor, data, summary)
    record_change(session, actor, "imported", mode, intents=summary.intents, added=summary.added,
                  updated=summary.updated, removed=summary.removed, skipped=len(summary.skipped))
    return summary


def _merge(session: Session, actor: Actor, data: TrainingData, summary: ImportSummary) -> None:
    known = dict(session.exec(select(NluExample.text, NluIntent.name)
                              .join(NluIntent, NluIntent.id == NluExample.intent_id)).all())
    counter = HoldoutCounter(session)
    positions: dict[int, int] = {}
    intents: dict[str, NluIntent] = {}

    def intent_named(name: str) -> NluIntent:
        # One lookup per intent, not per example: a thousand-line import stays one batch of inserts.
        if name not in intents:
            intents[name] = ensure_intent(session, actor, name)
        return intents[name]

    for name, metadata in data.intent_metadata.items():
        intent = intent_named(name)
        intent.rasa_metadata = {"value": metadata}
        session.add(intent)
    for item in data.examples:
        if item.text in known:
            if known[item.text] == item.intent:
                summary.unchanged += 1
            else:
                summary.skipped.append({"text": item.text, "intent": item.intent, "existing_intent": known[item.text]})
            continue
        intent = intent_named(item.intent)
        if intent.id not in positions:
            positions[intent.id] = _next_position(session, intent.id)
        example = NluExample(intent_id=intent.id, text=item.text, folded=fold(item.text),
                             entities=_entity_dicts(item.entities), rasa_metadata=item.metadata,
                             position=positions[intent.id], source=ExampleSource.imported,
                             holdout=counter.next(intent.id, ExampleSource.imported),
                             created_by=actor.id if actor.type == "agent" else None)
        positions[intent.id] += 1
        known[item.text] = item.intent
        session.add(example)
        summary.added += 1
    for kind, items in (("synonym", list(data.synonyms.items())),
                        ("regex", [(r.name, r.patterns) for r in data.regexes]),
                        ("lookup", [(t.name, t.elements) for t in data.lookups])):
        for name, entries in items:
            row = session.exec(select(NluVocabulary).where(NluVocabulary.kind == kind, NluVocabulary.name == name)).first()
            if row is None:
                last = session.exec(select(func.max(NluVocabulary.position)).where(NluVocabulary.kind == kind)).one()
                row = NluVocabulary(kind=kind, name=name, entries=[], position=(last if last is not None else -1) + 1)
            row.entries = list(dict.fromkeys([*row.entries, *entries]))
            session.add(row)
    session.flush()


# ---------------------------------------------------------------------------------------------
# What a retrain trains and tests on


@dataclass(frozen=True)
class TrainingSnapshot:
    """The training set at one revision, split for a retrain."""

    revision: int
    train: TrainingData
    holdout: TrainingData
    #: labelled review messages: (text, intent), one per distinct text
    review: list[tuple[str, str]]


def labelled_review_set(session: Session, intents: set[str]) -> list[tuple[str, str]]:
    """The messages admins labelled from the review queue, one per distinct text, latest label wins."""
    rows = session.exec(
        select(NluReviewItem.text, NluReviewItem.label)
        .where(NluReviewItem.status == ReviewStatus.labelled, col(NluReviewItem.label).is_not(None))
        .order_by(col(NluReviewItem.decided_at).asc(), col(NluReviewItem.id).asc())
    ).all()
    latest: dict[str, str] = {}
    for text, label in rows:
        cleaned = without_brackets(clean_text(text))
        if cleaned and label in intents:
            latest.pop(cleaned, None)
            latest[cleaned] = label
    return list(latest.items())


def snapshot(session: Session) -> TrainingSnapshot:
    """Read the training set and split it: training examples, held-out examples, the review set."""
    rows = _ordered_examples(session)
    synonyms, regexes, lookups = _vocabulary_parts(session)
    train, holdout = [], []
    for example, intent in rows:
        (holdout if example.holdout else train).append(_training_example(example, intent.name))
    trained_intents = {example.intent for example in train}
    if len(trained_intents) < 2:
        raise BadRequest("training needs at least two intents with examples")
    intent_metadata = {}
    for intent in session.exec(select(NluIntent)).all():
        if intent.rasa_metadata is not None:
            intent_metadata[intent.name] = intent.rasa_metadata.get("value")
    return TrainingSnapshot(
        revision=data_revision(session),
        train=TrainingData(examples=train, synonyms=synonyms, regexes=regexes, lookups=lookups,
                           intent_metadata=intent_metadata),
        holdout=TrainingData(examples=[e for e in holdout if e.intent in trained_intents]),
        review=labelled_review_set(session, trained_intents),
    )


"""The NLU training set as a whole: seeding it from data/nlu, reading it as the NLU library's
TrainingData, Rasa YAML export and import, and the snapshot a retrain trains and tests on.

Like ``service``, these add to the session and never commit (seeding excepted: it runs once per database).
"""

from __future__ import annotations

import tempfile
import threading
import weakref
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, delete, select

from bot.knowledge import fold
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest
from helpdesk.training.holdout import HoldoutCounter, assign_holdout
from helpdesk.training.models import (
    ExampleSource,
    NluExample,
    NluIntent,
    NluReviewItem,
    NluTrainingState,
    NluVocabulary,
    ReviewStatus,
)
from helpdesk.training.service import (
    Actor,
    annotations,
    check_intent_name,
    clean_text,
    data_revision,
    ensure_intent,
    entity_dicts,
    list_vocabulary,
    next_position,
    read_state,
    record_change,
    without_brackets,
)
from helpdesk.shop.catalog import catalog_lookup
from nlu import TrainingData, TrainingDataError, TrainingExample, load_training_data
from nlu.training_data import LookupTable, RegexFeature

SEEDED_KEY = "seeded"

_seed_lock = threading.Lock()


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
            if read_state(session, SEEDED_KEY) is None:
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


def _training_example(example: NluExample, intent: str) -> TrainingExample:
    return TrainingExample(example.text, intent, annotations(example.entities), example.rasa_metadata)


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
        spans = entity_dicts(item.entities)
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
    assign_holdout(session, fresh)
    session.exec(delete(NluVocabulary))
    _add_vocabulary(session, data)
    session.flush()
    return counts


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
            positions[intent.id] = next_position(session, intent.id)
        example = NluExample(intent_id=intent.id, text=item.text, folded=fold(item.text),
                             entities=entity_dicts(item.entities), rasa_metadata=item.metadata,
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
        # the catalog's product names join the lookup tables at training time (helpdesk/shop/catalog.py)
        train=TrainingData(examples=train, synonyms=synonyms, regexes=regexes, lookups=lookups,
                           intent_metadata=intent_metadata).merge(catalog_lookup(session)),
        holdout=TrainingData(examples=[e for e in holdout if e.intent in trained_intents]),
        review=labelled_review_set(session, trained_intents),
    )

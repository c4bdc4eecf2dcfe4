"""The review queue: customer messages the bot may have misunderstood, grouped so that
near-identical ones are labelled together.

A message enters the queue when its reading was unsure (below the review threshold), was
``nlu_fallback``, came right before the conversation was handed to a person, or when an agent flagged
it. The first three are collected from the messages and the audit trail by an incremental sweep
(cursors in ``nlu_training_state``) that runs before the queue is read; flags are added at once.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.knowledge import fold
from helpdesk.agents.models import Agent
from helpdesk.audit import service as audit
from helpdesk.audit.models import AuditEntry
from helpdesk.conversations.models import Message, MessageAuthor
from helpdesk.conversations.service import get_conversation_for
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest, NotFound
from helpdesk.training import annotations, service
from helpdesk.training.holdout import HoldoutCounter
from helpdesk.training.models import ExampleSource, NluReviewItem, ReviewReason, ReviewStatus
from helpdesk.training.service import Actor

#: readings less sure than this go to review (the pipeline's own fallback threshold is lower)
REVIEW_CONFIDENCE_THRESHOLD = 0.6
#: rows younger than this may still be missing a concurrent transaction's rows: not passed by a cursor
SETTLE_WINDOW = timedelta(minutes=2)
MESSAGE_CURSOR = "review.message_cursor"
ESCALATION_CURSOR = "review.escalation_cursor"
SWEEP_BATCH = 2000
SWEEP_MAX_BATCHES = 20
FALLBACK_INTENT = "nlu_fallback"
#: messages shown per group in the queue
GROUP_SAMPLE = 20

_WORD_JUNK = re.compile(r"[^\w#]+")
_collect_lock = threading.Lock()


def normalise(text: str) -> str:
    """The text reduced to what makes messages near-identical: lower case, no diacritics, codes and
    numbers masked as ``#``, punctuation dropped, whitespace collapsed."""
    tokens: list[str] = []
    for token in fold(unicodedata.normalize("NFC", text)).split():
        if any(char.isdigit() for char in token) or "@" in token:
            token = "#"  # order codes, phone numbers, amounts, e-mail addresses
        for word in _WORD_JUNK.sub(" ", token.replace("_", " ")).split():
            if not (word == "#" and tokens and tokens[-1] == "#"):
                tokens.append(word)
    return " ".join(tokens)


def group_key(text: str) -> str:
    """The group a message belongs to (a hash of its normalised text)."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:24]


def group_id(key: str) -> str:
    """The public id of a group (``g`` + its key), as taken by the label and dismiss routes."""
    return f"g{key}"


def reading_summary(nlu: dict[str, Any] | None) -> tuple[str | None, float | None, bool]:
    """(the top real intent, its confidence, whether the reading fell back) of a stored reading."""
    if not nlu:
        return None, None, False
    intent = nlu.get("intent") or {}
    fell_back = intent.get("name") == FALLBACK_INTENT
    if fell_back:
        # Show what the model would have guessed: the best real intent of the ranking.
        for ranked in nlu.get("intent_ranking") or []:
            if ranked.get("name") and ranked["name"] != FALLBACK_INTENT:
                return ranked["name"], float(ranked.get("confidence") or 0.0), True
        return None, None, True
    confidence = intent.get("confidence")
    return intent.get("name"), None if confidence is None else float(confidence), False


def reasons_for_reading(nlu: dict[str, Any] | None, threshold: float) -> list[str]:
    """Why a reading needs review (empty when it does not)."""
    name, confidence, fell_back = reading_summary(nlu)
    if not nlu:
        return []
    if fell_back:
        return [ReviewReason.fallback]
    if name is None or confidence is None or confidence < threshold:
        return [ReviewReason.low_confidence]
    return []


def _add_item(session: Session, message: Message, reason: str, **extra: Any) -> NluReviewItem:
    """Put a message in the queue, or add a reason to its entry."""
    item = session.exec(select(NluReviewItem).where(NluReviewItem.message_id == message.id)).first()
    if item is None:
        intent, confidence, _ = reading_summary(message.nlu)
        item = NluReviewItem(
            message_id=message.id, conversation_id=message.conversation_id, channel=message.channel,
            text=message.text, group_key=group_key(message.text), reasons=reason, predicted_intent=intent,
            confidence=confidence, model_version=(message.nlu or {}).get("model_version") or None,
            message_at=message.created_at,
        )
    else:
        reasons = [r for r in item.reasons.split(",") if r]
        if reason not in reasons:
            item.reasons = ",".join([*reasons, reason])
        if reason == ReviewReason.flagged and item.status == ReviewStatus.dismissed:
            item.status, item.decided_at, item.decided_by = ReviewStatus.open, None, None  # an agent says: look again
    for key, value in extra.items():
        setattr(item, key, value)
    session.add(item)
    return item


# ---------------------------------------------------------------------------------------------
# Collecting


def collect(engine: Engine, threshold: float = REVIEW_CONFIDENCE_THRESHOLD, now: datetime | None = None) -> int:
    """Bring the queue up to date with new messages and escalations; returns how many rows were seen."""
    now = now or utcnow()
    with _collect_lock:
        for attempt in range(3):
            with Session(engine, expire_on_commit=False) as session:
                try:
                    seen = _collect_messages(session, threshold, now) + _collect_escalations(session, threshold, now)
                    session.commit()
                    return seen
                except IntegrityError:
                    # Another process queued the same message a moment earlier: read again.
                    session.rollback()
                    if attempt == 2:
                        raise
    return 0


def _collect_messages(session: Session, threshold: float, now: datetime) -> int:
    cursor = int(service.get_state(session, MESSAGE_CURSOR, "0"))
    settled_before = now - SETTLE_WINDOW
    last_seen, advancing, seen = cursor, True, 0
    for _ in range(SWEEP_MAX_BATCHES):
        messages = session.exec(
            select(Message).where(Message.id > last_seen, Message.author == MessageAuthor.customer)
            .order_by(Message.id).limit(SWEEP_BATCH)
        ).all()
        for message in messages:
            last_seen, seen = message.id, seen + 1
            # The reading is stored a moment after the message: only settled messages move the cursor.
            advancing = advancing and message.created_at < settled_before
            if advancing:
                cursor = message.id
            if message.text.strip():
                for reason in reasons_for_reading(message.nlu, threshold):
                    _add_item(session, message, reason)
        if len(messages) < SWEEP_BATCH:
            break
    service.set_state(session, MESSAGE_CURSOR, str(cursor))
    return seen


def _understood_request_for_a_person(message: Message, reason: str | None, threshold: float) -> bool:
    """A clear "let me talk to a person" (or yes to the bot's offer) was understood: nothing to review."""
    return reason == "customer_request" and not reasons_for_reading(message.nlu, threshold) and bool(message.nlu)


def _collect_escalations(session: Session, threshold: float, now: datetime) -> int:
    cursor = int(service.get_state(session, ESCALATION_CURSOR, "0"))
    settled_before = now - SETTLE_WINDOW
    entries = session.exec(
        select(AuditEntry).where(AuditEntry.action == "conversation_escalated", AuditEntry.id > cursor)
        .order_by(AuditEntry.id).limit(SWEEP_BATCH * SWEEP_MAX_BATCHES)
    ).all()
    advancing = True
    for entry in entries:
        advancing = advancing and entry.created_at < settled_before
        if advancing:
            cursor = entry.id
        if entry.entity_id is None:
            continue
        message = session.exec(
            select(Message).where(Message.conversation_id == entry.entity_id,
                                  Message.author == MessageAuthor.customer,
                                  Message.created_at <= entry.created_at)
            .order_by(col(Message.id).desc()).limit(1)
        ).first()
        reason = (entry.details or {}).get("reason")
        if message is None or not message.text.strip() or _understood_request_for_a_person(message, reason, threshold):
            continue
        _add_item(session, message, ReviewReason.handoff, escalation_reason=(reason or None) and str(reason)[:64])
    service.set_state(session, ESCALATION_CURSOR, str(cursor))
    return len(entries)


def flag_message(session: Session, agent: Agent, message_id: int, note: str | None = None) -> NluReviewItem:
    """An agent says the bot misunderstood this customer message: put it in the queue."""
    message = session.get(Message, message_id)
    if message is None:
        raise NotFound(f"message {message_id} not found")
    get_conversation_for(session, agent, message.conversation_id)  # NotFound when not the agent's to see
    if message.author != MessageAuthor.customer or not message.text.strip():
        raise BadRequest("only a customer's text message can be flagged for the bot's training")
    item = _add_item(session, message, ReviewReason.flagged, flagged_by=agent.id)
    session.flush()
    audit.record(session, "nlu_message_flagged", "message", message.id, actor_type="agent", actor_id=agent.id,
                 note=(note or "")[:500])
    return item


# ---------------------------------------------------------------------------------------------
# Reading the queue


@dataclass
class ReviewGroup:
    """Near-identical messages, with counts, labelled as one."""

    id: str
    count: int
    newest_at: datetime
    oldest_at: datetime
    texts: list[str]
    reasons: dict[str, int]
    channels: dict[str, int]
    predicted: dict[str, int]
    items: list[NluReviewItem] = field(default_factory=list)


@dataclass(frozen=True)
class ReviewFilter:
    """Which part of the queue to read."""

    status: str = ReviewStatus.open
    channel: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def conditions(self) -> list[Any]:
        """The SQL conditions of this filter."""
        conditions: list[Any] = [NluReviewItem.status == self.status]
        if self.channel:
            conditions.append(NluReviewItem.channel == self.channel)
        if self.reason:
            conditions.append(col(NluReviewItem.reasons).contains(self.reason))
        if self.since is not None:
            conditions.append(NluReviewItem.message_at >= self.since)
        if self.until is not None:
            conditions.append(NluReviewItem.message_at < self.until)
        return conditions


def list_groups(session: Session, flt: ReviewFilter, limit: int = 50, offset: int = 0) -> tuple[list[ReviewGroup], int]:
    """Groups of the queue, newest message first, with counts."""
    conditions = flt.conditions()
    newest = func.max(NluReviewItem.message_at)
    rows = session.exec(
        select(NluReviewItem.group_key, func.count(), newest, func.min(NluReviewItem.message_at))
        .where(*conditions).group_by(NluReviewItem.group_key)
        .order_by(newest.desc(), NluReviewItem.group_key).offset(offset).limit(limit)
    ).all()
    total = session.exec(select(func.count(func.distinct(NluReviewItem.group_key))).where(*conditions)).one()
    if not rows:
        return [], int(total)
    keys = [row[0] for row in rows]
    items = session.exec(
        select(NluReviewItem).where(*conditions, col(NluReviewItem.group_key).in_(keys))
        .order_by(col(NluReviewItem.message_at).desc(), col(NluReviewItem.id).desc())
        .limit(max(5000, limit * GROUP_SAMPLE))
    ).all()
    by_key: dict[str, list[NluReviewItem]] = {key: [] for key in keys}
    for item in items:
        by_key[item.group_key].append(item)
    groups = []
    for key, count, newest_at, oldest_at in rows:
        members = by_key[key]
        groups.append(ReviewGroup(
            id=group_id(key), count=int(count), newest_at=newest_at, oldest_at=oldest_at,
            texts=list(dict.fromkeys(item.text.strip() for item in members))[:GROUP_SAMPLE],
            reasons=dict(Counter(r for item in members for r in item.reasons.split(",") if r)),
            channels=dict(Counter(item.channel for item in members)),
            predicted=dict(Counter(item.predicted_intent or "?" for item in members)),
            items=members[:GROUP_SAMPLE],
        ))
    return groups, int(total)


def _target_items(session: Session, target: str, open_only: bool) -> list[NluReviewItem]:
    """The items a label or dismissal applies to: a group's (``g…``) open items, or one message's.

    With ``open_only`` false, a group none of whose messages is open still answers with all of
    them: labelling it again is a no-op, or a change of mind. An unknown group or message is
    NotFound; a known group with nothing open, under ``open_only``, gives no items.
    """
    if target.startswith("g") and len(target) > 1:
        items = session.exec(select(NluReviewItem).where(NluReviewItem.group_key == target[1:])
                             .order_by(col(NluReviewItem.message_at).desc(), col(NluReviewItem.id).desc())).all()
        if not items:
            raise NotFound(f"no review group {target}")
        still_open = [item for item in items if item.status == ReviewStatus.open]
        return still_open if still_open or open_only else list(items)
    if target.isdigit():
        item = session.exec(select(NluReviewItem).where(NluReviewItem.message_id == int(target))).first()
        if item is None:
            raise NotFound(f"message {target} is not in the review queue")
        return [item]
    raise NotFound(f"no review group or message {target!r}")


def _queue_message(session: Session, actor: Actor, message_id: int) -> NluReviewItem | None:
    """Let an admin label any customer message by id, queued or not (yet): one the sweep has not
    reached is queued with the reason its reading gives, or as flagged by the admin."""
    if session.exec(select(NluReviewItem.id).where(NluReviewItem.message_id == message_id)).first() is not None:
        return None
    message = session.get(Message, message_id)
    if message is None or message.author != MessageAuthor.customer or not message.text.strip():
        return None  # _target_items answers NotFound
    reasons = reasons_for_reading(message.nlu, REVIEW_CONFIDENCE_THRESHOLD) or [ReviewReason.flagged]
    item = _add_item(session, message, reasons[0],
                     flagged_by=actor.id if reasons[0] == ReviewReason.flagged and actor.type == "agent" else None)
    session.flush()
    return item


@dataclass
class LabelOutcome:
    """What labelling did to the training set."""

    intent: str
    messages: int
    added: list[int] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def representative_texts(items: list[NluReviewItem]) -> list[str]:
    """One training text per near-identical variant among ``items``: the form customers wrote most
    often (the newest on a tie), made safe for Rasa YAML.

    Items arrive newest first. A group shares one normalised form, so a group gives one text:
    labelling it adds one example however many customers wrote it.
    """
    by_form: dict[str, Counter[str]] = {}
    for item in items:
        text = service.without_brackets(service.clean_text(item.text))
        if text:
            by_form.setdefault(normalise(text), Counter())[text] += 1
    # Counter.most_common keeps first-seen order among equal counts, and items come newest first.
    return [variants.most_common(1)[0][0] for variants in by_form.values()]


def label(session: Session, actor: Actor, target: str, intent: str,
          entities: list[dict[str, Any]] | None = None, text: str | None = None) -> LabelOutcome:
    """Label a group (its open messages; all of them when none is open) or one message: it becomes
    one example of ``intent`` (an example with the same text moves to it), and its messages join
    the review set. Labelling the same group again adds nothing.

    ``entities`` marked by offsets refer to ``text``, the message the page showed (the group's
    newest when absent); a span outside it or crossing another is refused (422) before anything
    is written."""
    intent = service.check_intent_name(intent)
    if target.isdigit():
        _queue_message(session, actor, int(target))
    items = _target_items(session, target, open_only=False)
    shown = [item.text.strip() for item in items]
    reference = shown[0] if text is None else text.strip()
    if text is not None and entities and reference not in shown:
        raise annotations.InvalidAnnotation("the annotated text is not a message of this review group")
    marks = annotations.check_marks(reference, entities or [])
    service.ensure_intent(session, actor, intent)
    outcome = LabelOutcome(intent=intent, messages=len(items))
    counter = HoldoutCounter(session)
    for text in representative_texts(items):
        spans = annotations.spans_for(text, reference, marks)
        existing = service.find_examples_by_text(session, text)
        if existing:
            view = existing[0]
            # Marks made now replace the example's spans; without marks its spans stay.
            new_spans = spans if marks and spans != view.example.entities else None
            if view.intent == intent and new_spans is None:
                outcome.unchanged.append(view.example.id)
            else:
                # The admin's reading of this exact text wins over the one in the training set.
                service.update_example(session, actor, view.example.id, intent=intent, entities=new_spans)
                (outcome.unchanged if view.intent == intent else outcome.moved).append(view.example.id)
            continue
        try:
            view = service.add_example(session, actor, intent, text, spans,
                                       source=ExampleSource.review, holdout=counter)
        except BadRequest as exc:
            outcome.skipped.append(f"{text[:80]}: {exc.reason}")
            continue
        outcome.added.append(view.example.id)
    now = utcnow()
    for item in items:
        item.status, item.label, item.decided_by, item.decided_at = ReviewStatus.labelled, intent, actor.id, now
        session.add(item)
    service.record_change(session, actor, "review_labelled", intent, target=target, messages=len(items),
                          added=outcome.added, moved=outcome.moved)
    session.flush()
    return outcome


def dismiss(session: Session, actor: Actor, target: str) -> int:
    """Take a group's open messages (or one message) out of the queue without labelling; returns
    how many (none when the group was dealt with already)."""
    items = _target_items(session, target, open_only=True)
    if not items:
        return 0
    now = utcnow()
    for item in items:
        item.status, item.decided_by, item.decided_at = ReviewStatus.dismissed, actor.id, now
        session.add(item)
    service.record_change(session, actor, "review_dismissed", items[0].text, target=target, messages=len(items))
    session.flush()
    return len(items)

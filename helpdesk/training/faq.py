"""FAQ answers edited from the training page: stored as overrides of the data/faq files, and laid
over the bot's Knowledge so the bot answers with them."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.knowledge import FaqEntry, FaqLink, Knowledge
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest, NotFound
from helpdesk.training import service
from helpdesk.training.models import NluFaqAnswer
from helpdesk.training.service import Actor

FAQ_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
LOCALES = ("vi", "en")


@dataclass(frozen=True)
class FaqView:
    """One FAQ answer as the bot will use it, and where it comes from."""

    entry: FaqEntry
    origin: str  # "file", "edited" (a file entry overridden), "added" (only in the database)
    hidden: bool = False


def _entry_of(row: NluFaqAnswer) -> FaqEntry:
    return FaqEntry(id=row.faq_id, intent=row.intent, answer=dict(row.answer), keywords=tuple(row.keywords),
                    links=tuple(FaqLink(link["title"], link["url"]) for link in row.links))


def overlay(base: Knowledge, rows: list[NluFaqAnswer]) -> Knowledge:
    """The file knowledge with the database's answers laid over it: edited entries replaced in
    place, hidden ones left out, new ones after the file's entries of their intent."""
    by_id = {row.faq_id: row for row in rows}
    merged = Knowledge()
    for intent, entries in base.by_intent.items():
        for entry in entries:
            row = by_id.pop(entry.id, None)
            if row is None:
                merged.by_intent.setdefault(intent, []).append(entry)
            elif not row.hidden:
                edited = _entry_of(row)
                merged.by_intent.setdefault(edited.intent, []).append(edited)
    for row in sorted(by_id.values(), key=lambda r: r.id or 0):
        if not row.hidden:
            merged.by_intent.setdefault(row.intent, []).append(_entry_of(row))
    return merged


def load_rows(engine: Engine) -> list[NluFaqAnswer]:
    """Every stored FAQ answer override."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.exec(select(NluFaqAnswer).order_by(NluFaqAnswer.id)).all())


def revision(engine: Engine) -> tuple[int, str]:
    """A cheap fingerprint of the overrides (count, newest change) to notice edits by other processes."""
    with Session(engine) as session:
        count, newest = session.exec(select(func.count(), func.max(NluFaqAnswer.updated_at))).one()
    return int(count), "" if newest is None else newest.isoformat()


def list_answers(session: Session, base: Knowledge, intent: str | None = None) -> list[FaqView]:
    """FAQ answers (file ones, edited ones, added ones, hidden ones), optionally of one intent."""
    rows = {row.faq_id: row for row in session.exec(select(NluFaqAnswer).order_by(NluFaqAnswer.id)).all()}
    views: list[FaqView] = []
    for entries in base.by_intent.values():
        for entry in entries:
            row = rows.pop(entry.id, None)
            if row is None:
                views.append(FaqView(entry, "file"))
            else:
                views.append(FaqView(_entry_of(row), "edited", row.hidden))
    views.extend(FaqView(_entry_of(row), "added", row.hidden) for row in rows.values())
    return [view for view in views if intent is None or view.entry.intent == intent]


def _clean_answer(answer: dict[str, Any]) -> dict[str, str]:
    cleaned = {str(locale): str(text).strip() for locale, text in answer.items() if str(text).strip()}
    if not cleaned:
        raise BadRequest("an answer needs text in at least one language (vi, en)")
    unknown = set(cleaned) - set(LOCALES)
    if unknown:
        raise BadRequest(f"unknown answer language {min(unknown)!r} (use vi or en)")
    return cleaned


def save_answer(session: Session, actor: Actor, base: Knowledge, faq_id: str, *, intent: str,
                answer: dict[str, Any], keywords: list[str], links: list[dict[str, str]]) -> FaqView:
    """Create or edit an FAQ answer (an edit of a file entry is kept as its override)."""
    if not FAQ_ID.match(faq_id):
        raise BadRequest("an FAQ id has letters, digits, _ . - (at most 100 characters)")
    intent = service.check_intent_name(intent)
    cleaned_links = []
    for link in links:
        title, url = str(link.get("title", "")).strip(), str(link.get("url", "")).strip()
        if not title or not re.match(r"^https?://", url):
            raise BadRequest("a link needs a title and an http(s) URL")
        cleaned_links.append({"title": title, "url": url})
    row = session.exec(select(NluFaqAnswer).where(NluFaqAnswer.faq_id == faq_id)).first()
    before = _snapshot(row) if row is not None else _file_snapshot(base, faq_id)
    if row is None:
        row = NluFaqAnswer(faq_id=faq_id, intent=intent, answer={})
    row.intent, row.answer = intent, _clean_answer(answer)
    row.keywords = list(dict.fromkeys(k.strip() for k in keywords if k.strip()))
    row.links, row.hidden, row.updated_by, row.updated_at = cleaned_links, False, actor.id, utcnow()
    session.add(row)
    session.flush()
    service.record_change(session, actor, "faq_saved", faq_id, before=before, after=_snapshot(row))
    in_file = _file_entry(base, faq_id) is not None
    return FaqView(_entry_of(row), "edited" if in_file else "added")


def hide_answer(session: Session, actor: Actor, base: Knowledge, faq_id: str) -> None:
    """Stop the bot using an answer: an added one is deleted, a file one is hidden."""
    row = session.exec(select(NluFaqAnswer).where(NluFaqAnswer.faq_id == faq_id)).first()
    file_entry = _file_entry(base, faq_id)
    if row is None and file_entry is None:
        raise NotFound(f"FAQ answer {faq_id!r} not found")
    before = _snapshot(row) if row is not None else _file_snapshot(base, faq_id)
    if file_entry is None:
        session.delete(row)
    else:
        if row is None:
            row = NluFaqAnswer(faq_id=faq_id, intent=file_entry.intent, answer=dict(file_entry.answer),
                               keywords=list(file_entry.keywords),
                               links=[{"title": link.title, "url": link.url} for link in file_entry.links])
        row.hidden, row.updated_by, row.updated_at = True, actor.id, utcnow()
        session.add(row)
    session.flush()
    service.record_change(session, actor, "faq_hidden", faq_id, before=before)


def revert_answer(session: Session, actor: Actor, base: Knowledge, faq_id: str) -> None:
    """Drop the database's version of a file answer: the bot answers with the file's text again."""
    row = session.exec(select(NluFaqAnswer).where(NluFaqAnswer.faq_id == faq_id)).first()
    if row is None or _file_entry(base, faq_id) is None:
        raise NotFound(f"FAQ answer {faq_id!r} has no edits to revert to a file version")
    before = _snapshot(row)
    session.delete(row)
    session.flush()
    service.record_change(session, actor, "faq_reverted", faq_id, before=before)


def _file_entry(base: Knowledge, faq_id: str) -> FaqEntry | None:
    return next((entry for entries in base.by_intent.values() for entry in entries if entry.id == faq_id), None)


def _file_snapshot(base: Knowledge, faq_id: str) -> dict[str, Any] | None:
    entry = _file_entry(base, faq_id)
    if entry is None:
        return None
    return {"intent": entry.intent, "answer": dict(entry.answer), "keywords": list(entry.keywords)}


def _snapshot(row: NluFaqAnswer) -> dict[str, Any]:
    return {"intent": row.intent, "answer": dict(row.answer), "keywords": list(row.keywords),
            "hidden": row.hidden}


def with_base(knowledge: Knowledge) -> Knowledge:
    """A copy of a Knowledge (so an overlay never changes the file knowledge it started from)."""
    return replace(knowledge, by_intent={intent: list(entries) for intent, entries in knowledge.by_intent.items()})

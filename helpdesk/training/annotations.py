"""Entity annotations on the training page: checking the spans an admin marks in a reviewed message,
carrying them onto the example that labelling adds, listing the entity names in use, and scoring the
entities of two models side by side for the comparison.

Spans are character offsets (Unicode code points, as Python counts them) into the message text the
page showed; the training set stores them as Rasa's entity spans, so the exported YAML carries them
in Rasa's inline form ``[value](entity)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, select

from helpdesk.core.errors import CareDeskError
from helpdesk.training import service
from helpdesk.training.models import NluExample, NluVocabulary
from nlu.evaluation import entity_report

#: a per-entity error list longer than this is cut (the counts stay exact)
MAX_ENTITY_ERRORS = 100

Span = tuple[str, int, int]


class InvalidAnnotation(CareDeskError):
    """An entity span that does not fit the text: outside it, empty, or crossing another span."""

    status = 422


# ---------------------------------------------------------------------------------------------
# Marks an admin made in a reviewed message


def check_marks(reference: str, marks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate marks given by offsets into ``reference`` (the text the page showed) and return
    them with their surface text; marks given by surface text alone pass through unchanged.

    A span outside the text, an empty or blank one, or one crossing another is refused with the
    reason, so the admin's annotation is never silently dropped or cut.
    """
    checked: list[dict[str, Any]] = []
    placed: list[dict[str, Any]] = []
    for mark in marks:
        entity = str(mark.get("entity") or "").strip()
        if not service.ENTITY_NAME.match(entity):
            raise InvalidAnnotation(f"invalid entity name {entity!r}: a letter or _, then letters, digits, _ . -")
        start, end = mark.get("start"), mark.get("end")
        if start is None and end is None:
            if not str(mark.get("text") or "").strip():
                raise InvalidAnnotation(f"entity {entity!r} needs a span (start and end) or the text it marks")
            checked.append({**mark, "entity": entity})
            continue
        if start is None or end is None:
            raise InvalidAnnotation(f"entity {entity!r} needs both start and end")
        if not 0 <= start < end <= len(reference):
            raise InvalidAnnotation(f"entity {entity!r} span {start}..{end} is outside the text "
                                    f"(0..{len(reference)})")
        surface = reference[start:end]
        if not surface.strip():
            raise InvalidAnnotation(f"entity {entity!r} span {start}..{end} holds only spaces")
        # Spaces the selection caught at either edge are not part of the value.
        start += len(surface) - len(surface.lstrip())
        end -= len(surface) - len(surface.rstrip())
        for other in placed:
            if start < other["end"] and other["start"] < end:
                raise InvalidAnnotation(
                    f"entity {entity!r} span {start}..{end} crosses the {other['entity']!r} annotation "
                    f"{other['start']}..{other['end']}")
        span = {**mark, "entity": entity, "start": start, "end": end, "text": reference[start:end]}
        placed.append(span)
        checked.append(span)
    return checked


def spans_for(text: str, reference: str, marks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entity spans for a training ``text`` from checked marks.

    When ``text`` is the shown message (as labelling stores it: trimmed, brackets made parentheses)
    the offsets carry over exactly; on another variant of the group each mark is found by its
    surface text (skipped where absent or where it would cross an earlier span).
    """
    lead = len(reference) - len(reference.lstrip())
    same = service.without_brackets(service.clean_text(reference)) == text and len(reference.strip()) == len(text)
    spans: list[dict[str, Any]] = []
    for mark in marks:
        surface = str(mark.get("text") or "").strip()
        if same and mark.get("start") is not None:
            start, end = mark["start"] - lead, mark["end"] - lead
        else:
            start = text.find(surface) if surface else -1
            if start < 0 and surface and len(text.lower()) == len(text):
                start = text.lower().find(surface.lower())
            end = start + len(surface)
        if start < 0 or any(start < s["end"] and s["start"] < end for s in spans):
            continue
        spans.append({"entity": mark["entity"], "value": mark.get("value") or None, "start": start, "end": end,
                      **{k: mark[k] for k in ("role", "group") if mark.get(k)}})
    return spans


def entity_names(session: Session) -> list[str]:
    """Entity names the training set uses (annotated in examples, or named by a regex or lookup
    table), most used first: the choices the page offers when marking a span."""
    counts: dict[str, int] = defaultdict(int)
    for entities in session.exec(select(NluExample.entities)).all():
        for span in entities or []:
            if span.get("entity"):
                counts[span["entity"]] += 1
    for name in session.exec(select(NluVocabulary.name).where(NluVocabulary.kind != "synonym")).all():
        counts[name] += 0
    return sorted(counts, key=lambda name: (-counts[name], name))


# ---------------------------------------------------------------------------------------------
# Entities in the comparison


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    return {"precision": report["precision"], "recall": report["recall"], "f1": report["f1"],
            "macro_f1": report["macro_f1"], "support": report["support"], "predicted": report["predicted"]}


def _span_json(text: str, span: Span) -> dict[str, Any]:
    entity, start, end = span
    return {"entity": entity, "start": start, "end": end, "text": text[start:end]}


def compare_entities(texts: Sequence[str], gold: Sequence[Sequence[Span]], candidate: Sequence[Sequence[Span]],
                     active: Sequence[Sequence[Span]] | None) -> dict[str, Any] | None:
    """Entity precision, recall and F1 (exact span and type; micro and per entity) of both models
    on the same texts, and the candidate's errors per entity: the expected and predicted spans of
    each text where they differ. None when no text has a gold entity (nothing to measure)."""
    gold_sets = [set(map(tuple, spans)) for spans in gold]
    if not any(gold_sets):
        return None
    cand_sets = [set(map(tuple, spans)) for spans in candidate]
    cand_report = entity_report(gold_sets, cand_sets)
    act_report = entity_report(gold_sets, [set(map(tuple, spans)) for spans in active]) if active is not None else None
    rows = []
    for name in sorted(n for n, scores in cand_report["per_entity"].items() if scores["support"]):
        after = cand_report["per_entity"][name]
        before = act_report["per_entity"].get(name) if act_report is not None else None
        rows.append({"entity": name, "support": after["support"],
                     "candidate": {k: after[k] for k in ("precision", "recall", "f1")},
                     "active": None if act_report is None else
                     {k: (before or {}).get(k, 0.0) for k in ("precision", "recall", "f1")}})
    errors: dict[str, list[dict[str, Any]]] = defaultdict(list)
    error_counts: dict[str, int] = defaultdict(int)
    for text, expected, predicted in zip(texts, gold_sets, cand_sets):
        if expected == predicted:
            continue
        for name in sorted({span[0] for span in expected ^ predicted}):
            error_counts[name] += 1
            if len(errors[name]) < MAX_ENTITY_ERRORS:
                errors[name].append({
                    "text": text,
                    "expected": [_span_json(text, s) for s in sorted(expected, key=lambda s: s[1]) if s[0] == name],
                    "predicted": [_span_json(text, s) for s in sorted(predicted, key=lambda s: s[1]) if s[0] == name],
                })
    candidate_summary = _summary(cand_report)
    active_summary = _summary(act_report) if act_report is not None else None
    return {
        "n": sum(1 for spans in gold_sets if spans),
        "active": active_summary,
        "candidate": candidate_summary,
        "delta": None if active_summary is None else
        {key: candidate_summary[key] - active_summary[key] for key in ("precision", "recall", "f1")},
        "per_entity": rows,
        "errors": [{"entity": name, "count": error_counts[name], "examples": errors[name]}
                   for name in sorted(errors, key=lambda n: (-error_counts[n], n))],
    }

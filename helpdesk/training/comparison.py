"""Side by side: the active model and a candidate on the held-out split and on the labelled review
set, with a verdict (better, worse, same) an admin can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from helpdesk.training.annotations import compare_entities
from nlu.evaluation import intent_report

#: a list of flips longer than this is cut (the counts stay exact)
MAX_FLIPS = 300
#: a change in accuracy or macro F1 smaller than this (half a point) is noise: the verdict is "same"
SAME_WITHIN = 0.005
#: the scores the verdict is read from; a fall in any of them on either set makes the candidate worse
JUDGED_METRICS = ("accuracy", "macro_f1")
METRIC_LABELS = {"accuracy": "accuracy", "macro_f1": "macro F1"}

#: (intent, confidence) or (intent, confidence, entity spans as (entity, start, end))
Prediction = tuple[Any, ...]


def _summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "weighted_f1": report["weighted_f1"],
            "n": report["n_examples"]}


def _report(gold: list[str], predicted: list[Prediction] | None) -> dict[str, Any] | None:
    if predicted is None or not gold:
        return None
    return intent_report(gold, [prediction[0] for prediction in predicted])


def _delta(active: dict[str, Any] | None, candidate: dict[str, Any] | None) -> dict[str, float] | None:
    if active is None or candidate is None:
        return None
    return {key: candidate[key] - active[key] for key in ("accuracy", "macro_f1", "weighted_f1")}


def _per_intent(active: dict[str, Any] | None, candidate: dict[str, Any] | None) -> list[dict[str, Any]]:
    if candidate is None:
        return []
    rows = []
    gold_intents = {name for name, scores in candidate["per_intent"].items() if scores["support"]}
    for name in sorted(gold_intents):
        after = candidate["per_intent"][name]["f1"]
        before = active["per_intent"].get(name, {}).get("f1", 0.0) if active is not None else None
        rows.append({"intent": name, "support": candidate["per_intent"][name]["support"], "active_f1": before,
                     "candidate_f1": after, "change": None if before is None else after - before})
    return sorted(rows, key=lambda row: (row["change"] if row["change"] is not None else 0.0, row["intent"]))


def _flips(sets: list[tuple[str, Sequence[tuple[str, str]], list[Prediction], list[Prediction]]]) -> dict[str, Any]:
    better, worse = [], []
    for name, gold, active, candidate in sets:
        for (text, intent), before, after in zip(gold, active, candidate):
            (was, was_conf), (now, now_conf) = before[:2], after[:2]
            if (was == intent) == (now == intent):
                continue
            flip = {"set": name, "text": text, "intent": intent, "active": was, "active_confidence": was_conf,
                    "candidate": now, "candidate_confidence": now_conf}
            (better if now == intent else worse).append(flip)
    return {"better_count": len(better), "worse_count": len(worse), "better": better[:MAX_FLIPS],
            "worse": worse[:MAX_FLIPS]}


def compare(
    holdout: Sequence[tuple[str, str]],
    review: Sequence[tuple[str, str]],
    candidate: list[Prediction],
    active: list[Prediction] | None,
    *,
    active_version: str | None,
    candidate_version: str,
    active_saw_holdout: bool,
    holdout_entities: Sequence[Sequence[tuple[str, int, int]]] | None = None,
) -> dict[str, Any]:
    """The comparison of a candidate with the active model; predictions cover holdout then review texts.

    With ``holdout_entities`` (the gold spans of each held-out example) and predictions that carry
    entity spans, ``entities`` compares both models' entity scores on the held-out split, and a fall
    in entity F1 makes the candidate worse like a fall in accuracy does."""
    split = len(holdout)
    cand_holdout, cand_review = candidate[:split], candidate[split:]
    act_holdout = active[:split] if active is not None else None
    act_review = active[split:] if active is not None else None
    holdout_gold, review_gold = [intent for _, intent in holdout], [intent for _, intent in review]
    reports = {
        "holdout": (_report(holdout_gold, act_holdout), _report(holdout_gold, cand_holdout)),
        "review": (_report(review_gold, act_review), _report(review_gold, cand_review)),
    }
    sections: dict[str, Any] = {}
    for name, (before, after) in reports.items():
        active_summary, candidate_summary = _summary(before), _summary(after)
        sections[name] = {"n": len(holdout if name == "holdout" else review), "active": active_summary,
                          "candidate": candidate_summary, "delta": _delta(active_summary, candidate_summary)}
    sections["holdout"]["comparable"] = active is not None and not active_saw_holdout
    entities = _entities(holdout, holdout_entities, cand_holdout, act_holdout)
    verdict, reasons, notes = _verdict(sections, active is not None, active_saw_holdout, entities)
    deltas = _deltas(sections)
    flips = _flips([("holdout", holdout, act_holdout, cand_holdout), ("review", review, act_review, cand_review)]
                   if active is not None else [])
    return {
        "active_version": active_version,
        "candidate_version": candidate_version,
        "holdout": sections["holdout"],
        "review": sections["review"],
        "per_intent": _per_intent(*reports["holdout"]),
        "entities": entities,
        "flips": flips,
        "verdict": verdict,
        "worse": verdict == "worse",
        "deltas": deltas,
        "headline": _headline(deltas, verdict),
        "reasons": reasons,
        "notes": notes,
    }


def _deltas(sections: dict[str, Any]) -> dict[str, dict[str, float] | None]:
    """The accuracy and macro F1 changes per set, the numbers the verdict is read from."""
    return {name: None if sections[name]["delta"] is None
            else {key: sections[name]["delta"][key] for key in JUDGED_METRICS}
            for name in ("holdout", "review")}


def _headline(deltas: dict[str, dict[str, float] | None], verdict: str) -> dict[str, Any] | None:
    """The change that decided the verdict: the largest fall of a worse candidate, the largest rise of a
    better one, so the badge can show "worse, -13.5 points" without recomputing anything."""
    changes = [(name, key, value) for name, delta in deltas.items() if delta for key, value in delta.items()]
    if verdict == "worse":
        name, key, value = min(changes, key=lambda change: change[2])
    elif verdict == "better":
        name, key, value = max(changes, key=lambda change: change[2])
    else:
        return None
    return {"set": name, "metric": key, "change": value}


def _entities(holdout: Sequence[tuple[str, str]], gold: Sequence[Sequence[tuple[str, int, int]]] | None,
              candidate: list[Prediction], active: list[Prediction] | None) -> dict[str, Any] | None:
    """Both models' entity scores on the held-out split (None without gold spans or predicted ones)."""
    if gold is None or any(len(prediction) < 3 for prediction in candidate):
        return None
    if active is not None and any(len(prediction) < 3 for prediction in active):
        active = None
    return compare_entities([text for text, _ in holdout], gold, [prediction[2] for prediction in candidate],
                            None if active is None else [prediction[2] for prediction in active])


def _verdict(sections: dict[str, Any], has_active: bool, active_saw_holdout: bool,
             entities: dict[str, Any] | None = None) -> tuple[str, list[str], list[str]]:
    notes: list[str] = []
    if not has_active:
        return "new", [], ["No model was active: nothing to compare with."]
    if active_saw_holdout:
        # Its held-out score is a score on its own training data. The verdict still follows the
        # numbers (a green badge over a falling score misleads); the note tells the admin why a
        # fall may be expected, and activating stays their decision.
        notes.append("The active model was trained on the held-out examples, so its held-out score is "
                     "optimistic: part of the fall there may come from that.")
    worse, better = [], []
    for name in ("holdout", "review"):
        delta = sections[name]["delta"]
        if delta is None:
            continue
        label = "held-out" if name == "holdout" else "review-set"
        for key in JUDGED_METRICS:
            before, after = sections[name]["active"][key], sections[name]["candidate"][key]
            if delta[key] < -SAME_WITHIN:
                worse.append(f"{label} {METRIC_LABELS[key]} falls from {before:.1%} to {after:.1%}")
            elif delta[key] > SAME_WITHIN:
                better.append(f"{label} {METRIC_LABELS[key]} rises from {before:.1%} to {after:.1%}")
    if entities is not None and entities["delta"] is not None:
        before, after = entities["active"]["f1"], entities["candidate"]["f1"]
        if entities["delta"]["f1"] < -SAME_WITHIN:
            worse.append(f"held-out entity F1 falls from {before:.1%} to {after:.1%}")
        elif entities["delta"]["f1"] > SAME_WITHIN:
            better.append(f"held-out entity F1 rises from {before:.1%} to {after:.1%}")
    if worse:
        return "worse", worse, notes
    if better:
        return "better", better, notes
    return "same", [f"accuracy and macro F1 within {SAME_WITHIN:.1%} of the active model"], notes

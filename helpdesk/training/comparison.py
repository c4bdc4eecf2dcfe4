"""Side by side: the active model and a candidate on the held-out split and on the labelled review
set, with a verdict (better, worse, same) an admin can act on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nlu.evaluation import intent_report

#: a list of flips longer than this is cut (the counts stay exact)
MAX_FLIPS = 300
EPSILON = 1e-9
#: how far below an active model that learnt the held-out examples a candidate may score on them
#: before it is called worse anyway: learning them is worth about 0.1-0.15 accuracy on the shipped
#: data (a fair retrain scores ~0.87 where the shipped model scores 1.0), while a candidate trained
#: on badly mislabelled data falls much further (30 % of labels shuffled: 0.54)
HOLDOUT_OPTIMISM_MARGIN = 0.2

Prediction = tuple[str, float]


def _summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {"accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "weighted_f1": report["weighted_f1"],
            "n": report["n_examples"]}


def _report(gold: list[str], predicted: list[Prediction] | None) -> dict[str, Any] | None:
    if predicted is None or not gold:
        return None
    return intent_report(gold, [name for name, _ in predicted])


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
        for (text, intent), (was, was_conf), (now, now_conf) in zip(gold, active, candidate):
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
) -> dict[str, Any]:
    """The comparison of a candidate with the active model; predictions cover holdout then review texts."""
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
    verdict, reasons, notes = _verdict(sections, active is not None, active_saw_holdout)
    flips = _flips([("holdout", holdout, act_holdout, cand_holdout), ("review", review, act_review, cand_review)]
                   if active is not None else [])
    return {
        "active_version": active_version,
        "candidate_version": candidate_version,
        "holdout": sections["holdout"],
        "review": sections["review"],
        "per_intent": _per_intent(*reports["holdout"]),
        "flips": flips,
        "verdict": verdict,
        "worse": verdict == "worse",
        "reasons": reasons,
        "notes": notes,
    }


def _verdict(sections: dict[str, Any], has_active: bool, active_saw_holdout: bool) -> tuple[str, list[str], list[str]]:
    notes: list[str] = []
    if not has_active:
        return "new", [], ["No model was active: nothing to compare with."]
    judged = ["holdout", "review"]
    if active_saw_holdout:
        # Its held-out score is a score on its own training data: only a fall well beyond what
        # having learnt those examples explains counts against the candidate.
        notes.append("The active model was trained on the held-out examples, so its held-out score is "
                     "optimistic; the verdict rests on the review set, unless the held-out accuracy falls by "
                     f"more than {HOLDOUT_OPTIMISM_MARGIN:.0%}.")
    worse, better = [], []
    for name in judged:
        delta = sections[name]["delta"]
        if delta is None:
            continue
        label = "held-out" if name == "holdout" else "review-set"
        before, after = sections[name]["active"]["accuracy"], sections[name]["candidate"]["accuracy"]
        margin = HOLDOUT_OPTIMISM_MARGIN if name == "holdout" and active_saw_holdout else 0.0
        if delta["accuracy"] < -margin - EPSILON:
            worse.append(f"{label} accuracy falls from {before:.1%} to {after:.1%}")
        elif delta["accuracy"] > EPSILON and not margin:
            better.append(f"{label} accuracy rises from {before:.1%} to {after:.1%}")
    if worse:
        return "worse", worse, notes
    if better:
        return "better", better, notes
    return "same", ["accuracy unchanged"], notes

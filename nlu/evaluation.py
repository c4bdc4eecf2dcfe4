"""Rasa-style evaluation of an interpreter on annotated test data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from nlu.calibration import ECE_BINS, expected_calibration_error
from nlu.components.fallback import FALLBACK_INTENT
from nlu.model import ParseResult
from nlu.training_data import TrainingData


class ParsesBatches(Protocol):
    """Anything with ``parse_batch`` (embedded or Rasa HTTP interpreter)."""

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Interpret many messages."""


def _prf(true_positive: int, predicted: int, actual: int) -> dict[str, float]:
    precision = true_positive / predicted if predicted else 0.0
    recall = true_positive / actual if actual else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}


def intent_report(gold: Sequence[str], predicted: Sequence[str], top_confused: int = 10) -> dict[str, Any]:
    """Return accuracy, macro/weighted F1, per-intent scores and the most confused pairs."""
    labels = sorted(set(gold) | set(predicted))
    true_positive = Counter(g for g, p in zip(gold, predicted) if g == p)
    predicted_count, actual_count = Counter(predicted), Counter(gold)
    per_intent = {}
    for label in labels:
        scores = _prf(true_positive[label], predicted_count[label], actual_count[label])
        per_intent[label] = {**scores, "support": actual_count[label]}
    gold_labels = sorted(set(gold))
    total = len(gold)
    macro = sum(per_intent[label]["f1"] for label in gold_labels) / len(gold_labels) if gold_labels else 0.0
    weighted = (
        sum(per_intent[label]["f1"] * actual_count[label] for label in gold_labels) / total if total else 0.0
    )
    confusions = Counter((g, p) for g, p in zip(gold, predicted) if g != p)
    return {
        "accuracy": sum(true_positive.values()) / total if total else 0.0,
        "macro_f1": macro,
        "weighted_f1": weighted,
        "n_examples": total,
        "per_intent": per_intent,
        "confused": [
            {"intent": g, "predicted": p, "count": c} for (g, p), c in confusions.most_common(top_confused)
        ],
    }


def entity_report(
    gold: Sequence[set[tuple[str, int, int]]], predicted: Sequence[set[tuple[str, int, int]]]
) -> dict[str, Any]:
    """Return span-level precision/recall/F1 (a prediction counts only with the exact entity type,
    start and end): micro-averaged over all entities, the macro F1 over the gold entity types, and
    per entity."""
    kinds = sorted({e[0] for spans in [*gold, *predicted] for e in spans})
    per_entity = {}
    total_tp = total_pred = total_gold = 0
    for kind in kinds:
        tp = sum(
            len({e for e in g if e[0] == kind} & {e for e in p if e[0] == kind})
            for g, p in zip(gold, predicted)
        )
        n_pred = sum(1 for spans in predicted for e in spans if e[0] == kind)
        n_gold = sum(1 for spans in gold for e in spans if e[0] == kind)
        per_entity[kind] = {**_prf(tp, n_pred, n_gold), "support": n_gold}
        total_tp, total_pred, total_gold = total_tp + tp, total_pred + n_pred, total_gold + n_gold
    gold_kinds = [kind for kind in kinds if per_entity[kind]["support"]]
    macro = sum(per_entity[k]["f1"] for k in gold_kinds) / len(gold_kinds) if gold_kinds else 0.0
    return {
        **_prf(total_tp, total_pred, total_gold),
        "macro_f1": macro,
        "support": total_gold,
        "predicted": total_pred,
        "per_entity": per_entity,
    }


def evaluate(interpreter: ParsesBatches, data: TrainingData) -> dict[str, Any]:
    """Parse every test example and return intent and entity reports.

    ``intent`` counts ``nlu_fallback`` as an error (what users see); ``intent_without_fallback``
    scores the top real intent (the classifier alone). ``entities`` scores exact spans and types;
    ``entity_errors`` lists, per example, the gold entities missed and the predicted ones not gold.
    """
    results = interpreter.parse_batch([example.text for example in data.examples])
    gold = [example.intent for example in data.examples]
    predicted = [r.intent.name for r in results]
    raw = [
        next((p.name for p in r.intent_ranking if p.name != FALLBACK_INTENT), r.intent.name) for r in results
    ]
    gold_entities = [{(e.entity, e.start, e.end) for e in example.entities} for example in data.examples]
    predicted_entities = [{(e.entity, e.start, e.end) for e in r.entities} for r in results]
    errors = [
        {"text": ex.text, "intent": ex.intent, "predicted": r.intent.name, "confidence": r.intent.confidence}
        for ex, r in zip(data.examples, results)
        if r.intent.name != ex.intent
    ]
    entity_errors = [
        {
            "text": ex.text,
            "missed": [_span_json(ex.text, e) for e in sorted(g - p, key=lambda e: e[1])],
            "spurious": [_span_json(ex.text, e) for e in sorted(p - g, key=lambda e: e[1])],
        }
        for ex, g, p in zip(data.examples, gold_entities, predicted_entities)
        if g != p
    ]
    return {
        "calibration": calibration_report(interpreter, results, gold),
        "intent": intent_report(gold, predicted),
        "intent_without_fallback": intent_report(gold, raw),
        "fallback_rate": sum(p == FALLBACK_INTENT for p in predicted) / len(predicted) if predicted else 0.0,
        "entities": entity_report(gold_entities, predicted_entities),
        "errors": errors,
        "entity_errors": entity_errors,
    }


def calibration_report(interpreter: Any, results: Sequence[ParseResult], gold: Sequence[str]) -> dict[str, Any]:
    """Return the expected calibration error (``ECE_BINS`` bins) of the top real intent's confidence on
    this data, and, for an embedded model with a fitted temperature, the ECE the same classifier had
    before calibration (its softmax at temperature 1, recovered from the full ranking)."""
    confidences, correct, uncalibrated = [], [], []
    temperature = ((getattr(interpreter, "metadata", None) or {}).get("training_report") or {}).get(
        "calibration", {}
    ).get("temperature")
    for result, truth in zip(results, gold):
        ranking = [p for p in result.intent_ranking if p.name != FALLBACK_INTENT]
        if not ranking:
            continue
        confidences.append(ranking[0].confidence)
        correct.append(ranking[0].name == truth)
        if temperature:
            # p_i is proportional to exp(T * s_i), so p_i ** (1 / T) is proportional to exp(s_i).
            with np.errstate(divide="ignore"):
                logs = np.log(np.array([p.confidence for p in ranking])) / temperature
            raw = np.exp(logs - logs.max())
            uncalibrated.append(float(raw[0] / raw.sum()))
    report: dict[str, Any] = {
        "bins": ECE_BINS,
        "ece": expected_calibration_error(confidences, correct),
        "mean_confidence": float(np.mean(confidences)) if confidences else 0.0,
        "accuracy": float(np.mean(correct)) if correct else 0.0,
    }
    if uncalibrated:
        report["temperature"] = temperature
        report["ece_uncalibrated"] = expected_calibration_error(uncalibrated, correct)
    return report


def _span_json(text: str, span: tuple[str, int, int]) -> dict[str, Any]:
    entity, start, end = span
    return {"entity": entity, "start": start, "end": end, "text": text[start:end]}

"""Evaluation reports."""

from __future__ import annotations

import pytest

from nlu.evaluation import entity_report, evaluate, intent_report


def test_intent_report_scores():
    report = intent_report(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert report["accuracy"] == 0.75
    assert report["per_intent"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert report["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert report["confused"] == [{"intent": "a", "predicted": "b", "count": 1}]


def test_entity_report_counts_exact_spans():
    gold = [{("phone", 0, 10)}, {("order_id", 4, 12)}]
    predicted = [{("phone", 0, 10), ("date", 11, 15)}, {("order_id", 5, 12)}]
    report = entity_report(gold, predicted)
    assert (report["precision"], report["recall"]) == (pytest.approx(1 / 3), 0.5)
    assert report["per_entity"]["phone"]["f1"] == 1.0
    # macro over the gold types only: phone 1.0, order_id 0.0 (the date is a false positive)
    assert report["macro_f1"] == 0.5 and (report["support"], report["predicted"]) == (2, 3)


def test_evaluate_counts_fallback_as_an_error_but_also_scores_without_it(tiny_interpreter, tiny_data):
    report = evaluate(tiny_interpreter, tiny_data)
    assert report["intent_without_fallback"]["accuracy"] >= report["intent"]["accuracy"]
    assert report["intent_without_fallback"]["accuracy"] > 0.9

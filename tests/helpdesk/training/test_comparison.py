"""The side-by-side verdict on a candidate (pure: no model, no database)."""

from __future__ import annotations

import pytest

from helpdesk.training.comparison import compare

HOLDOUT = [("xin chào", "greet"), ("cảm ơn nhé", "thank"), ("đơn tới đâu rồi", "order_status"),
           ("hủy đơn giúp mình", "cancel_order"), ("bye shop", "goodbye")]
REVIEW = [("sửa đồ hãng khác không", "ask_warranty_policy")]


def predictions(*intents: str) -> list[tuple[str, float]]:
    return [(intent, 0.9) for intent in intents]


RIGHT = predictions("greet", "thank", "order_status", "cancel_order", "goodbye")


def test_a_candidate_that_gets_held_out_examples_wrong_is_worse():
    candidate = predictions("greet", "greet", "order_status", "order_status", "goodbye", "ask_warranty_policy")
    result = compare(HOLDOUT, REVIEW, candidate, RIGHT + predictions("ask_warranty_policy"), active_version="a",
                     candidate_version="b", active_saw_holdout=False)

    assert result["verdict"] == "worse" and result["worse"] is True
    assert result["holdout"]["delta"]["accuracy"] < 0 and result["holdout"]["comparable"] is True
    assert result["reasons"][0] == "held-out accuracy falls from 100.0% to 60.0%"
    assert result["reasons"][1].startswith("held-out macro F1 falls")
    assert [(flip["text"], flip["active"], flip["candidate"]) for flip in result["flips"]["worse"]] == [
        ("cảm ơn nhé", "thank", "greet"), ("hủy đơn giúp mình", "cancel_order", "order_status")]
    assert result["flips"]["better_count"] == 0
    by_intent = {row["intent"]: row["change"] for row in result["per_intent"]}
    assert by_intent["thank"] == -1.0 and by_intent["greet"] < 0 and by_intent["goodbye"] == 0


def test_a_fix_on_the_review_set_is_better():
    result = compare(HOLDOUT, REVIEW, RIGHT + predictions("ask_warranty_policy"),
                     RIGHT + predictions("nlu_fallback"), active_version="a", candidate_version="b",
                     active_saw_holdout=False)

    assert result["verdict"] == "better"
    assert result["flips"]["better"][0] | {"active_confidence": 0, "candidate_confidence": 0} == {
        "set": "review", "text": REVIEW[0][0], "intent": "ask_warranty_policy", "active": "nlu_fallback",
        "candidate": "ask_warranty_policy", "active_confidence": 0, "candidate_confidence": 0}


def test_a_fall_on_the_held_out_examples_is_worse_even_when_the_review_set_improves():
    # The active model learnt the held-out examples, yet a candidate that misses one of them is not
    # shown as better because it fixed the review set: the verdict follows the numbers, the note says why.
    candidate = predictions("greet", "thank", "order_status", "cancel_order", "greet", "ask_warranty_policy")
    result = compare(HOLDOUT, REVIEW, candidate, RIGHT + predictions("nlu_fallback"), active_version="a",
                     candidate_version="b", active_saw_holdout=True)

    assert result["verdict"] == "worse" and result["worse"] is True and result["holdout"]["comparable"] is False
    assert "held-out accuracy falls from 100.0% to 80.0%" in result["reasons"]
    assert result["deltas"]["holdout"]["accuracy"] == pytest.approx(-0.2)
    assert result["deltas"]["review"] == {"accuracy": 1.0, "macro_f1": 1.0}
    assert result["headline"]["set"] == "holdout" and result["headline"]["change"] < -0.2 + 1e-9
    assert "optimistic" in result["notes"][0]


def test_equal_scores_are_the_same():
    result = compare(HOLDOUT, REVIEW, RIGHT + predictions("nlu_fallback"), RIGHT + predictions("nlu_fallback"),
                     active_version="a", candidate_version="b", active_saw_holdout=False)

    assert result["verdict"] == "same" and result["headline"] is None
    assert result["deltas"]["holdout"] == {"accuracy": 0.0, "macro_f1": 0.0}


def test_a_collapse_on_the_held_out_examples_is_worse_even_against_a_model_that_learnt_them():
    candidate = predictions("greet", "greet", "greet", "greet", "greet", "ask_warranty_policy")
    result = compare(HOLDOUT, REVIEW, candidate, RIGHT + predictions("ask_warranty_policy"), active_version="a",
                     candidate_version="b", active_saw_holdout=True)

    assert result["verdict"] == "worse"
    assert result["reasons"][0] == "held-out accuracy falls from 100.0% to 20.0%"


def test_the_first_model_has_nothing_to_compare_with():
    result = compare(HOLDOUT, [], RIGHT, None, active_version=None, candidate_version="b", active_saw_holdout=False)

    assert result["verdict"] == "new" and result["holdout"]["active"] is None
    assert result["holdout"]["candidate"]["accuracy"] == 1.0 and result["flips"]["worse_count"] == 0

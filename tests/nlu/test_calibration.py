"""Confidence that means what it says: calibration, the data-chosen fallback threshold and the
out-of-scope score, all with real fitting and training (no mocks)."""

from __future__ import annotations

import numpy as np
import pytest

from nlu import load_model, load_training_data, train_model
from nlu.calibration import (
    expected_calibration_error,
    fit_temperature,
    folds_with_held_out_intents,
    lowest_threshold_for_precision,
    nearest_similarity,
    softmax,
)
from nlu.components.fallback import FALLBACK_INTENT
from nlu.components.featurizer import feature_matrix
from nlu.evaluation import evaluate
from nlu.message import Message

SMALL_PIPELINE = (
    "pipeline:\n- name: VietnameseNormalizer\n- name: NgramFeaturizer\n"
    "- name: LinearIntentClassifier\n- name: FallbackClassifier\n"
)


def overconfident_logits(rng, n: int, classes: int = 4, accuracy: float = 0.7):
    """Logits whose argmax is right ``accuracy`` of the time but whose softmax says ~1.0."""
    truth = rng.integers(classes, size=n)
    predicted = np.where(rng.random(n) < accuracy, truth, (truth + rng.integers(1, classes, size=n)) % classes)
    logits = rng.normal(0.0, 1.0, size=(n, classes))
    logits[np.arange(n), predicted] += 4.0
    return logits * 5.0, truth  # the factor 5 is the overconfidence temperature scaling must undo


def test_expected_calibration_error_of_known_cases():
    assert expected_calibration_error([1.0, 1.0, 1.0, 1.0], [True, True, True, True]) == 0.0
    assert expected_calibration_error([0.9] * 10, [True] * 5 + [False] * 5) == pytest.approx(0.4)
    # Two bins: 0.25 confidence at 0.5 accuracy, 0.95 at 1.0: weighted gap (2 * .25 + 2 * .05) / 4.
    ece = expected_calibration_error([0.25, 0.25, 0.95, 0.95], [True, False, True, True], bins=10)
    assert ece == pytest.approx(0.15)


def test_temperature_scaling_lowers_the_ece_of_overconfident_scores():
    rng = np.random.default_rng(7)
    fit_logits, fit_truth = overconfident_logits(rng, 3000)
    test_logits, test_truth = overconfident_logits(rng, 3000)
    temperature = fit_temperature(fit_logits, fit_truth, prior_strength=0.0, bounds=(0.01, 50.0))
    assert temperature < 0.5  # the scores had to be flattened

    def ece(scale: float) -> float:
        probabilities = softmax(test_logits * scale)
        return expected_calibration_error(
            probabilities.max(axis=1), probabilities.argmax(axis=1) == test_truth
        )

    before, after = ece(1.0), ece(temperature)
    assert before > 0.2
    assert after < 0.1
    assert after < before / 3


def test_lowest_threshold_keeps_the_precision_target_and_no_lower_one_does():
    rng = np.random.default_rng(3)
    confidence = rng.random(2000)
    correct = rng.random(2000) < confidence  # calibrated: right with the probability it states
    threshold = lowest_threshold_for_precision(confidence, correct, 0.97)
    kept = confidence >= threshold
    assert correct[kept].mean() >= 0.97
    assert kept.sum() > 50
    lower = np.sort(confidence[confidence < threshold])[-1]  # the next cut down keeps one more answer
    assert correct[confidence >= lower].mean() < 0.97 or lower == threshold


def test_threshold_is_zero_when_every_answer_is_already_precise_enough():
    assert lowest_threshold_for_precision([0.3, 0.6, 0.9], [True, True, True], 0.97) == 0.0


def test_held_out_intent_folds_score_each_example_once_and_hold_out_whole_intents():
    labels = [f"intent{i % 10}" for i in range(300)]
    fold, held_out = folds_with_held_out_intents(labels, 3, 0.1, seed=0)
    assert set(fold) == {0, 1, 2}
    for k in range(3):
        held = {label for label, h in zip(labels, held_out) if h == k}
        assert len(held) == 1  # 10% of 10 intents, disjoint per fold
        assert all(h == k for label, h in zip(labels, held_out) if label in held)


def test_batch_and_single_nearest_similarity_agree(tiny_interpreter):
    classifier = next(c for c in tiny_interpreter.components if c.name == "LinearIntentClassifier")
    texts = ["đơn hàng của mình đâu", "hello shop", "bảo hành mấy tháng", "lorem ipsum dolor"]
    messages = [Message(text) for text in texts]
    for component in tiny_interpreter.components[:2]:
        component.process_batch(messages)
    batch = nearest_similarity(classifier._word_vectors(feature_matrix(messages)), classifier.similarity_examples)
    single = [classifier.similarity(*m.data["sparse_features"]) for m in messages]
    assert np.allclose(batch, single, atol=1e-5)
    assert batch[-1] == 0.0 and batch[0] > 0.3


def test_trained_model_reports_calibration_and_the_chosen_threshold(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(SMALL_PIPELINE)
    interpreter = load_model(train_model(tiny_data, tmp_path / "model", config_path=config))
    report = interpreter.metadata["training_report"]
    assert report["calibration"]["ece"] < report["calibration"]["ece_uncalibrated"]
    fallback = report["fallback"]
    assert fallback["threshold_source"] == "chosen"
    assert fallback["threshold"] == fallback["chosen_threshold"]
    assert 0.0 <= fallback["threshold"] <= 1.0
    # The loaded model uses the chosen threshold: a fallback carries it as its confidence.
    component = interpreter.components[-1]
    assert component.threshold == pytest.approx(fallback["threshold"], abs=1e-4)
    evaluation = evaluate(interpreter, tiny_data)
    assert evaluation["calibration"]["bins"] == 15
    assert "ece_uncalibrated" in evaluation["calibration"]


def test_a_pinned_threshold_wins_and_the_chosen_one_is_still_reported(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(SMALL_PIPELINE + "  threshold: 0.55\n")
    interpreter = load_model(train_model(tiny_data, tmp_path / "model", config_path=config))
    fallback = interpreter.metadata["training_report"]["fallback"]
    assert fallback["threshold_source"] == "config"
    assert fallback["threshold"] == 0.55
    assert "chosen_threshold" in fallback
    assert interpreter.components[-1].threshold == 0.55


@pytest.fixture(scope="module")
def in_scope_only_model(tmp_path_factory):
    """The shipped training data without its out_of_scope intent: only in-scope examples."""
    data = load_training_data(["data/nlu"])
    data.examples = [e for e in data.examples if e.intent != "out_of_scope"]
    directory = tmp_path_factory.mktemp("in-scope-only")
    config = directory / "config.yml"
    config.write_text(SMALL_PIPELINE)
    return load_model(train_model(data, directory / "model", config_path=config))


@pytest.mark.slow
def test_out_of_scope_messages_fall_back_without_an_out_of_scope_intent(in_scope_only_model):
    report = in_scope_only_model.metadata["training_report"]["fallback"]
    assert report["held_out_precision"] >= 0.97
    assert report["pseudo_out_of_scope_recall"] >= 0.7
    outside = [
        "hôm nay trời đẹp ghê",
        "mua bitcoin lãi 300% inbox ngay",
        "shop bên kia bán quần áo size nào",
        "vé máy bay đi Đà Nẵng tuần sau",
    ]
    inside = ["ok", "vâng", "không", "bye", "tạm biệt", "cảm ơn shop", "đơn hàng của mình đâu rồi",
              "bảo hành bao lâu", "cho gặp nhân viên", "nồi cơm điện bị hỏng"]
    assert [r.intent.name for r in in_scope_only_model.parse_batch(outside)] == [FALLBACK_INTENT] * 4
    assert [in_scope_only_model.parse(text).intent.name for text in outside] == [FALLBACK_INTENT] * 4
    kept = [r.intent.name for r in in_scope_only_model.parse_batch(inside)]
    assert FALLBACK_INTENT not in kept, list(zip(inside, kept))


@pytest.mark.parametrize("value", ["1.5", "lots", "-0.1"])
def test_a_threshold_that_is_neither_auto_nor_a_probability_is_a_config_error(tiny_data, tmp_path, value):
    from nlu.pipeline import NLUConfigError

    config = tmp_path / "config.yml"
    config.write_text(SMALL_PIPELINE + f"  threshold: {value}\n")
    with pytest.raises(NLUConfigError, match="threshold"):
        train_model(tiny_data, tmp_path / "model", config_path=config)
    assert not (tmp_path / "model").exists()

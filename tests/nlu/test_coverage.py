"""Word coverage of a message by its predicted intent (nlu/coverage.py) and how the intent
classifier's out-of-scope score reads it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nlu import load_model, train_model
from nlu.coverage import IntentCoverage, message_words
from nlu.message import Message
from nlu.pipeline import NLUConfigError

PIPELINE = (
    "pipeline:\n- name: VietnameseNormalizer\n- name: NgramFeaturizer\n"
    "- name: LinearIntentClassifier\n{options}- name: FallbackClassifier\n"
)

# intent 0: orders, intent 1: warranty
EXAMPLES = [
    (["where", "is", "my", "order"], 0),
    (["track", "my", "order"], 0),
    (["warranty", "policy"], 1),
    (["how", "long", "is", "the", "warranty"], 1),
]


def idf(document_frequency: int, n_examples: int = len(EXAMPLES)) -> float:
    return math.log((1 + n_examples) / (1 + document_frequency)) + 1


@pytest.fixture()
def coverage() -> IntentCoverage:
    return IntentCoverage.fit([tokens for tokens, _ in EXAMPLES], [intent for _, intent in EXAMPLES], 2)


def test_a_message_in_its_intents_own_words_is_fully_covered(coverage):
    unknown, covered, association = coverage.features(["track", "order"], 0)
    assert unknown == 0.0
    assert covered == pytest.approx(1.0)
    assert association == pytest.approx(1.0)  # both words occur only in order examples


def test_unseen_words_weigh_as_much_as_a_word_in_no_example(coverage):
    unknown, covered, _ = coverage.features(["order", "bitcoin"], 0)
    # "order" occurs in 2 examples, "bitcoin" in none: its weight is the largest there is.
    expected = idf(0) / (idf(0) + idf(2))
    assert unknown == pytest.approx(expected)
    assert covered == pytest.approx(1.0 - expected)


def test_words_of_another_intent_are_not_covered_and_shared_words_share_their_association(coverage):
    unknown, covered, association = coverage.features(["is", "warranty"], 0)
    assert unknown == 0.0
    # "is" is in one order and one warranty example; "warranty" only in warranty ones.
    assert covered == pytest.approx(idf(2) / (idf(2) + idf(2)))
    assert association == pytest.approx(0.5 * idf(2) / (2 * idf(2)))
    assert coverage.features(["is", "warranty"], 1)[1] == pytest.approx(1.0)


def test_a_message_without_words_counts_as_unknown(coverage):
    assert coverage.features([], 0) == (1.0, 0.0, 0.0)
    assert message_words("?!  ...") == []


def test_feature_rows_match_single_messages_and_survive_a_json_round_trip(coverage):
    messages = [["track", "order"], ["warranty", "bitcoin"], []]
    rows = coverage.feature_rows(messages, [0, 1, 0])
    restored = IntentCoverage.from_state(json.loads(json.dumps(coverage.state())))
    for row, tokens, intent in zip(rows, messages, [0, 1, 0]):
        assert row == pytest.approx(coverage.features(tokens, intent))
        assert restored.features(tokens, intent) == pytest.approx(coverage.features(tokens, intent))


def classifier_of(interpreter):
    return next(c for c in interpreter.components if c.name == "LinearIntentClassifier")


def test_the_out_of_scope_score_reads_the_configured_features_and_the_model_keeps_them(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(PIPELINE.format(options="  out_of_scope_features: [top_score, covered, unknown]\n"))
    interpreter = load_model(train_model(tiny_data, tmp_path / "model", config_path=config))
    classifier = classifier_of(interpreter)
    assert classifier.oos_features == ("top_score", "covered", "unknown")
    assert classifier.oos_model["features"] == ["top_score", "covered", "unknown"]
    report = interpreter.metadata["training_report"]["calibration"]
    assert report["out_of_scope_features"] == ["top_score", "covered", "unknown"]
    assert classifier.coverage is not None
    # Batch and single parses score alike, and a message in the training words scores lower than
    # the same request padded with words no example has.
    texts = ["kiểm tra giúp em đơn hàng với", "kiểm tra giúp em đơn bitcoin ethereum dogecoin"]
    batch = interpreter.parse_batch(texts)
    assert [r.intent.name for r in batch] == [interpreter.parse(t).intent.name for t in texts]
    scores = []
    for text in texts:
        message = Message(text)
        for component in interpreter.components[:3]:
            component.process(message)
        scores.append(message.data["out_of_scope_score"])
    assert scores[0] < scores[1]


def test_a_model_saved_before_the_choice_keeps_its_five_features(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(
        PIPELINE.format(
            options="  out_of_scope_features: [log_confidence, top_score, margin, energy, similarity]\n"
        )
    )
    model_dir = train_model(tiny_data, tmp_path / "model", config_path=config)
    [classes_file] = model_dir.glob("*_LinearIntentClassifier/classes.json")
    meta = json.loads(classes_file.read_text(encoding="utf-8"))
    del meta["out_of_scope_model"]["features"]  # as models saved before this option wrote it
    classes_file.write_text(json.dumps(meta), encoding="utf-8")
    expected = load_model(model_dir)
    classifier = classifier_of(expected)
    assert classifier.oos_features == ("log_confidence", "top_score", "margin", "energy", "similarity")
    assert classifier.coverage is None
    result = expected.parse("đơn hàng của mình đâu")
    assert result.intent.name == "order_status"
    assert np.isfinite(result.intent.confidence)


@pytest.mark.parametrize(
    "options",
    [
        "  out_of_scope_features: [covered, colour]\n",
        "  out_of_scope_features: []\n",
        "  out_of_scope_features: [top_score, covered]\n  coverage_view: null\n",
    ],
)
def test_an_unknown_empty_or_unreadable_feature_list_is_a_config_error(tiny_data, tmp_path, options):
    config = tmp_path / "config.yml"
    config.write_text(PIPELINE.format(options=options))
    with pytest.raises(NLUConfigError, match="out_of_scope_features"):
        train_model(tiny_data, tmp_path / "model", config_path=config)
    assert not (tmp_path / "model").exists()

"""The linear intent classifier."""

from __future__ import annotations

import numpy as np
import pytest

from nlu.components.classifier import LinearIntentClassifier
from nlu.components.featurizer import NgramFeaturizer
from nlu.components.normalizer import VietnameseNormalizer
from nlu.message import Message


def featurised(pairs, featurizer=None):
    messages = [Message(text, {"intent_label": intent}) for text, intent in pairs]
    VietnameseNormalizer().process_batch(messages)
    if featurizer is None:
        featurizer = NgramFeaturizer()
        featurizer.train(messages)
    featurizer.process_batch(messages)
    return messages, featurizer


TRAINING = [
    ("xin chào shop", "greet"),
    ("chào bạn", "greet"),
    ("hello", "greet"),
    ("đơn hàng ở đâu", "order"),
    ("kiểm tra đơn hàng", "order"),
    ("where is my order", "order"),
    ("bảo hành bao lâu", "warranty"),
    ("chính sách bảo hành", "warranty"),
    ("warranty policy", "warranty"),
]


@pytest.fixture(scope="module")
def trained():
    messages, featurizer = featurised(TRAINING)
    classifier = LinearIntentClassifier()
    classifier.train(messages)
    return classifier, featurizer


def classify(classifier, featurizer, text):
    [message], _ = featurised([(text, None)], featurizer)
    classifier.process(message)
    return message


def test_predicts_the_trained_intent(trained):
    assert classify(*trained, "đơn hàng của mình đâu").data["intent"]["name"] == "order"


def test_ranking_is_full_sorted_and_sums_to_one(trained):
    ranking = classify(*trained, "bao hanh").data["intent_ranking"]
    confidences = [r["confidence"] for r in ranking]
    assert sorted(r["name"] for r in ranking) == ["greet", "order", "warranty"]
    assert confidences == sorted(confidences, reverse=True)
    assert abs(sum(confidences) - 1.0) < 1e-6


def test_batch_matches_single_message(trained):
    classifier, featurizer = trained
    messages, _ = featurised([("chào shop", None), ("warranty bao lâu", None)], featurizer)
    classifier.process_batch(messages)
    for message in messages:
        single = classify(classifier, featurizer, message.text)
        assert message.data["intent"]["name"] == single.data["intent"]["name"]
        assert abs(message.data["intent"]["confidence"] - single.data["intent"]["confidence"]) < 1e-5


def test_persist_and_load_give_the_same_scores(trained, tmp_path):
    classifier, featurizer = trained
    classifier.persist(tmp_path)
    loaded = LinearIntentClassifier.load(tmp_path, classifier.config)
    indices, values = classify(classifier, featurizer, "đơn hàng").data["sparse_features"]
    np.testing.assert_allclose(loaded.scores(indices, values), classifier.scores(indices, values), rtol=1e-6)


def test_two_intents_train_as_a_binary_problem():
    messages, featurizer = featurised(TRAINING[:6])
    classifier = LinearIntentClassifier()
    classifier.train(messages)
    assert classify(classifier, featurizer, "chào bạn nhé").data["intent"]["name"] == "greet"


def test_logistic_regression_model_is_available():
    messages, featurizer = featurised(TRAINING)
    classifier = LinearIntentClassifier({"model": "logreg", "C": 10.0})
    classifier.train(messages)
    assert classify(classifier, featurizer, "chính sách bảo hành").data["intent"]["name"] == "warranty"

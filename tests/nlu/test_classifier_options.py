"""Options of the linear intent classifier (nlu/components/classifier.py), trained for real."""

from __future__ import annotations

import numpy as np
import pytest

from nlu import load_model, train_model
from nlu.components.classifier import LinearIntentClassifier
from nlu.pipeline import NLUConfigError
from nlu.training_data import TrainingData

PIPELINE = (
    "pipeline:\n- name: VietnameseNormalizer\n- name: NgramFeaturizer\n"
    "- name: LinearIntentClassifier\n{options}- name: FallbackClassifier\n"
)


def classifier_of(interpreter) -> LinearIntentClassifier:
    return next(c for c in interpreter.components if c.name == "LinearIntentClassifier")


def trained(data: TrainingData, tmp_path, name: str, options: str):
    config = tmp_path / f"{name}.yml"
    config.write_text(PIPELINE.format(options=options))
    return load_model(train_model(data, tmp_path / name, config_path=config))


def test_the_joint_multi_class_svm_learns_the_intents_and_is_a_different_model(tiny_data, tmp_path):
    joint = trained(tiny_data, tmp_path, "joint", "  multi_class: crammer_singer\n")
    per_intent = trained(tiny_data, tmp_path, "ovr", "")
    assert classifier_of(per_intent).config["multi_class"] == "ovr"  # the default
    assert classifier_of(joint).config["multi_class"] == "crammer_singer"
    # One joint problem, not one binary problem per intent: other weights from the same features.
    assert not np.allclose(classifier_of(joint).weights_t, classifier_of(per_intent).weights_t, atol=1e-3)
    classifier = classifier_of(joint)
    top = [classifier.classes[int(np.argmax(classifier.scores(*features(joint, e.text))))] for e in tiny_data.examples]
    assert top == [e.intent for e in tiny_data.examples]  # fits its own training data
    held_out = {"đơn hàng mình tới đâu rồi": "order_status", "bảo hành mấy tháng vậy": "ask_warranty_policy",
                "cho gặp nhân viên tư vấn": "talk_to_human", "chào shop nha": "greet"}
    assert {t: r.intent.name for t, r in zip(held_out, joint.parse_batch(list(held_out)))} == held_out
    calibration = joint.metadata["training_report"]["calibration"]
    assert calibration["temperature"] > 0


def features(interpreter, text: str):
    """Return a message's sparse features as the pipeline computes them before the classifier."""
    from nlu.message import Message
    from nlu.normalization import nfc

    message = Message(nfc(text))
    for component in interpreter.components:
        if component.name == "LinearIntentClassifier":
            return message.data["sparse_features"]
        component.process(message)
    raise AssertionError("no classifier in the pipeline")


def test_the_joint_svm_handles_two_intents(tiny_data, tmp_path):
    two = TrainingData(
        examples=[e for e in tiny_data.examples if e.intent in ("greet", "talk_to_human")],
    )
    interpreter = trained(two, tmp_path, "two", "  multi_class: crammer_singer\n")
    assert classifier_of(interpreter).weights_t.shape[1] == 2
    results = interpreter.parse_batch(["xin chào shop", "cho mình gặp nhân viên"])
    ranked = [r.intent_ranking[0].name if r.intent.name == "nlu_fallback" else r.intent.name for r in results]
    assert ranked == ["greet", "talk_to_human"]


@pytest.mark.parametrize("value", ["multinomial", "crammer-singer"])
def test_an_unknown_multi_class_is_a_config_error(tiny_data, tmp_path, value):
    config = tmp_path / "config.yml"
    config.write_text(PIPELINE.format(options=f"  multi_class: {value}\n"))
    with pytest.raises(NLUConfigError, match="multi_class"):
        train_model(tiny_data, tmp_path / "model", config_path=config)
    assert not (tmp_path / "model").exists()

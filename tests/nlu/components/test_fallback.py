"""The low-confidence fallback."""

from __future__ import annotations

from nlu.components.fallback import FALLBACK_INTENT, FallbackClassifier
from nlu.message import Message


def ranked(*pairs):
    ranking = [{"name": n, "confidence": c} for n, c in pairs]
    return Message("x", {"intent": dict(ranking[0]), "intent_ranking": ranking})


def test_confident_intent_is_kept():
    message = ranked(("greet", 0.9), ("order", 0.1))
    FallbackClassifier({"threshold": 0.5}).process(message)
    assert message.data["intent"] == {"name": "greet", "confidence": 0.9}


def test_below_threshold_becomes_nlu_fallback_on_top_of_the_real_ranking():
    message = ranked(("greet", 0.35), ("order", 0.33), ("thank", 0.32))
    FallbackClassifier({"threshold": 0.4}).process(message)
    assert message.data["intent"] == {"name": FALLBACK_INTENT, "confidence": 0.4}
    assert [r["name"] for r in message.data["intent_ranking"]] == [FALLBACK_INTENT, "greet", "order", "thank"]


def test_ambiguity_threshold_falls_back_on_close_top_two():
    message = ranked(("greet", 0.5), ("order", 0.45), ("thank", 0.05))
    FallbackClassifier({"threshold": 0.3, "ambiguity_threshold": 0.1}).process(message)
    assert message.data["intent"]["name"] == FALLBACK_INTENT


def test_threshold_is_configurable_through_the_pipeline_config(tiny_data, tmp_path):
    from nlu import load_model, train_model

    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n- name: VietnameseNormalizer\n- name: NgramFeaturizer\n"
        "- name: LinearIntentClassifier\n- name: FallbackClassifier\n  threshold: 0.95\n"
    )
    interpreter = load_model(train_model(tiny_data, tmp_path / "model", config_path=config))
    outcomes = set()
    for text in ["xin chào shop", "asdf ghjk", "what is the weather", "qqq vvv", "bảo hành", "đơn hàng đâu"]:
        result = interpreter.parse(text)
        real_top = next(p for p in result.intent_ranking if p.name != FALLBACK_INTENT)
        fell_back = result.intent.name == FALLBACK_INTENT
        assert fell_back == (real_top.confidence < 0.95)
        assert not fell_back or result.intent.confidence == 0.95
        outcomes.add(fell_back)
    assert outcomes == {True, False}

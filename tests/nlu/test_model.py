"""Training, loading and parsing with a whole model."""

from __future__ import annotations

import json

import pytest

from nlu import Interpreter, ModelLoadError, NLUConfigError, ParseResult, load_model, train_model
from nlu.components.fallback import FALLBACK_INTENT


def test_parse_finds_intent_and_entities(tiny_interpreter):
    result = tiny_interpreter.parse("đơn hàng DH654321 của em đâu rồi")
    assert result.intent.name == "order_status"
    assert [(e.entity, e.value, e.start, e.end) for e in result.entities] == [("order_id", "DH654321", 9, 17)]


def test_parse_understands_unaccented_and_abbreviated_text(tiny_interpreter):
    assert tiny_interpreter.parse("cho gap nv tu van").intent.name == "talk_to_human"
    assert tiny_interpreter.parse("sp bh mấy tháng").intent.name == "ask_warranty_policy"


def test_ranking_is_full_and_sorted(tiny_interpreter):
    ranking = tiny_interpreter.parse("xin chào").intent_ranking
    assert sorted(p.name for p in ranking) == sorted(tiny_interpreter.intents)
    assert [p.confidence for p in ranking] == sorted((p.confidence for p in ranking), reverse=True)


def test_to_rasa_has_exactly_rasas_parse_shape(tiny_interpreter):
    payload = tiny_interpreter.parse("nồi cơm điện bảo hành bao lâu").to_rasa()
    assert list(payload) == ["text", "intent", "entities", "intent_ranking", "model_version"]
    assert set(payload["intent"]) == {"name", "confidence"}
    required = {"entity", "value", "start", "end", "confidence_entity", "extractor"}
    assert payload["entities"] and all(
        required <= set(e) <= required | {"role", "group", "processors"} for e in payload["entities"]
    )
    assert all(set(r) == {"name", "confidence"} for r in payload["intent_ranking"])
    assert payload["model_version"] == tiny_interpreter.version
    json.dumps(payload)


def test_lookup_entity_value_goes_through_synonyms(tiny_interpreter):
    result = tiny_interpreter.parse("noi com dien nhà em bảo hành bao lâu")
    assert [(e.entity, e.value, e.extractor) for e in result.entities] == [
        ("product", "nồi cơm điện", "LookupEntityExtractor")
    ]


def test_parse_batch_equals_parse(tiny_interpreter):
    texts = ["xin chào", "đơn DH111111 đâu", "bảo hành sao", "", "let me talk to a human"]
    batch = tiny_interpreter.parse_batch(texts)
    for text, result in zip(texts, batch):
        single = tiny_interpreter.parse(text)
        assert result.intent.name == single.intent.name
        assert result.intent.confidence == pytest.approx(single.intent.confidence, abs=1e-5)
        assert result.entities == single.entities


async def test_aparse_gives_the_same_result(tiny_interpreter):
    assert (await tiny_interpreter.aparse("xin chào")).to_rasa() == tiny_interpreter.parse(
        "xin chào"
    ).to_rasa()


def test_empty_text_is_a_fallback(tiny_interpreter):
    result = tiny_interpreter.parse("   ")
    assert result.intent.name == FALLBACK_INTENT and result.intent.confidence == 0.0 and result.entities == []


def test_decomposed_unicode_input_is_parsed_like_composed(tiny_interpreter):
    import unicodedata

    decomposed = unicodedata.normalize("NFD", "chính sách bảo hành")
    assert (
        tiny_interpreter.parse(decomposed).to_rasa()
        == tiny_interpreter.parse("chính sách bảo hành").to_rasa()
    )


def test_model_directory_has_metadata(tiny_model_dir, tiny_data):
    metadata = json.loads((tiny_model_dir / "metadata.json").read_text())
    assert metadata["intents"] == tiny_data.intents
    assert metadata["version"] == load_model(tiny_model_dir).version
    assert len(metadata["training_data_hash"]) == 64
    assert [c["name"] for c in metadata["components"]][:3] == [
        "VietnameseNormalizer",
        "NgramFeaturizer",
        "LinearIntentClassifier",
    ]


def test_progress_reports_stages_up_to_done(tiny_data, tmp_path):
    seen = []
    train_model(tiny_data, tmp_path / "m", progress=lambda stage, fraction: seen.append((stage, fraction)))
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and seen[-1] == ("done", 1.0)
    assert any(stage == "training LinearIntentClassifier" for stage, _ in seen)


def test_training_replaces_an_existing_model_directory(tiny_data, tmp_path):
    first = load_model(train_model(tiny_data, tmp_path / "m")).version
    second = load_model(train_model(tiny_data, tmp_path / "m")).version
    assert first != second and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_training_accepts_paths(tiny_data_file, tmp_path):
    interpreter = load_model(train_model([tiny_data_file], tmp_path / "m"))
    assert isinstance(interpreter, Interpreter) and interpreter.parse("hello").intent.name == "greet"


def test_unknown_component_in_config_is_a_config_error(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("pipeline:\n- name: NoSuchThing\n")
    with pytest.raises(NLUConfigError, match="unknown pipeline component 'NoSuchThing'"):
        train_model(tiny_data, tmp_path / "m", config_path=config)


def test_unknown_component_option_is_a_config_error(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("pipeline:\n- name: FallbackClassifier\n  treshold: 0.3\n")
    with pytest.raises(NLUConfigError, match="unknown option 'treshold'"):
        train_model(tiny_data, tmp_path / "m", config_path=config)


def test_loading_a_non_model_directory_fails_clearly(tmp_path):
    with pytest.raises(ModelLoadError, match="not a model directory"):
        load_model(tmp_path)


def test_parse_result_round_trips_through_rasa_json(tiny_interpreter):
    result = tiny_interpreter.parse("đơn DH123456")
    assert ParseResult.from_rasa(result.to_rasa()) == result


def test_invalid_component_option_value_is_a_config_error(tiny_data, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n- name: NgramFeaturizer\n  blocks:\n  - {view: folded, analyzer: nope, ngram_range: [1, 2]}\n"
    )
    with pytest.raises(NLUConfigError, match="unknown analyzer 'nope'"):
        train_model(tiny_data, tmp_path / "m", config_path=config)


def _probe_pipeline(tmp_path, last: str):
    config = tmp_path / f"{last}.yml"
    config.write_text(
        "pipeline:\n  - name: VietnameseNormalizer\n  - name: NgramFeaturizer\n"
        f"  - name: LinearIntentClassifier\n  - name: IntentSeenProbeForTest\n  - name: {last}\n",
        encoding="utf-8",
    )
    return config


def test_training_runs_a_component_over_the_training_messages_only_when_a_later_one_reads_them(
    tiny_data, tmp_path
):
    from nlu.components import COMPONENT_REGISTRY, Component, register_component

    seen: list[bool] = []

    @register_component
    class IntentSeenProbe(Component):
        """Records whether the classifier's intents were attached to the training messages."""

        name = "IntentSeenProbeForTest"
        reads_processed_training_messages = False

        def train(self, examples, data=None):
            seen.append(all("intent" in m.data for m in examples))

    @register_component
    class Reader(Component):
        name = "ReaderForTest"  # reads what earlier components attached (the default)

    @register_component
    class NonReader(Component):
        name = "NonReaderForTest"
        reads_processed_training_messages = False

    try:
        train_model(tiny_data, tmp_path / "a", config_path=_probe_pipeline(tmp_path, "ReaderForTest"))
        train_model(tiny_data, tmp_path / "b", config_path=_probe_pipeline(tmp_path, "NonReaderForTest"))
        # skipping the pass costs the trained model nothing
        parsed = load_model(tmp_path / "b").parse("bảo hành bao lâu vậy shop")
        assert parsed.intent.name == "ask_warranty_policy"
    finally:
        for name in ("IntentSeenProbeForTest", "ReaderForTest", "NonReaderForTest"):
            COMPONENT_REGISTRY.pop(name)
    assert seen == [True, False]

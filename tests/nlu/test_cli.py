"""The ``caredesk nlu`` command line (typer's CliRunner)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from nlu import ModelStore
from nlu.cli import app

runner = CliRunner()


def invoke(*args: str, env: dict | None = None):
    return runner.invoke(app, [str(a) for a in args], env=env)


def test_train_writes_a_model_directory(tiny_data_file, tmp_path):
    result = invoke("train", "--data", tiny_data_file, "--out", tmp_path / "model")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "model" / "metadata.json").is_file() and "trained model" in result.output
    assert "fallback threshold" in result.output and "lowest keeping 97% precision" in result.output
    assert "confidence calibration: temperature" in result.output
    # the out-of-scope threshold line names what the score reads (the console may wrap it)
    assert "(top_score + covered) threshold" in " ".join(result.output.split())


def test_train_without_out_adds_to_the_store_and_activates_the_first(tiny_data_file, tmp_path):
    env = {"CAREDESK_NLU__MODELS_DIR": str(tmp_path / "store")}
    assert invoke("train", "--data", tiny_data_file, env=env).exit_code == 0
    store = ModelStore(tmp_path / "store")
    first = store.active_version()
    assert first is not None
    assert invoke("train", "--data", tiny_data_file, env=env).exit_code == 0
    assert len(store.versions()) == 2 and store.active_version() == first


def test_parse_prints_rasa_json(tiny_model_dir):
    result = invoke("parse", "--model", tiny_model_dir, "đơn DH123456 đâu rồi")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["intent"]["name"] == "order_status" and payload["entities"][0]["value"] == "DH123456"


def test_parse_uses_the_active_model_of_the_store(tiny_model_dir, tmp_path):
    ModelStore(tmp_path / "store").add(tiny_model_dir, activate=True)
    result = invoke("parse", "--models-dir", tmp_path / "store", "hello")
    assert result.exit_code == 0 and json.loads(result.output)["intent"]["name"] == "greet"


def test_test_prints_a_report(tiny_model_dir, tiny_data_file):
    result = invoke("test", "--model", tiny_model_dir, "--data", tiny_data_file)
    assert result.exit_code == 0, result.output
    for expected in ("intent accuracy", "macro F1", "weighted F1", "order_status", "entities: precision",
                     "confidence calibration: ECE"):
        assert expected in result.output


def test_test_json_has_intent_and_entity_scores(tiny_model_dir, tiny_data_file):
    result = invoke("test", "--model", tiny_model_dir, "--data", tiny_data_file, "--json")
    report = json.loads(result.output)
    assert report["intent"]["accuracy"] > 0.9
    assert set(report["intent"]["per_intent"]["greet"]) == {"precision", "recall", "f1", "support"}
    assert "confused" in report["intent"] and "f1" in report["entities"]
    assert report["calibration"]["bins"] == 15
    assert 0.0 <= report["calibration"]["ece"] <= 1.0 and "ece_uncalibrated" in report["calibration"]


def test_missing_data_file_exits_2_with_one_line(tmp_path):
    result = invoke("train", "--data", tmp_path / "missing.yml", "--out", tmp_path / "m")
    assert result.exit_code == 2
    assert "missing.yml: no such file or directory" in result.output
    assert "Traceback" not in result.output


def test_invalid_yaml_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: x\n  examples: |\n    - hi\n - oops: [\n")
    result = invoke("test", "--model", tmp_path, "--data", bad)
    assert result.exit_code == 2 and "bad.yml:5: invalid YAML" in result.output


def test_missing_model_exits_2(tmp_path):
    result = invoke("parse", "--models-dir", tmp_path / "empty", "hello")
    assert result.exit_code == 2 and "no active NLU model" in result.output


def test_invalid_config_exits_2(tiny_data_file, tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("pipeline:\n- name: NoSuchComponent\n")
    result = invoke("train", "--data", tiny_data_file, "--out", tmp_path / "m", "--config", config)
    assert result.exit_code == 2 and "unknown pipeline component 'NoSuchComponent'" in result.output


def test_test_json_scores_learned_entities_per_entity_next_to_intents(tmp_path):
    from tests.nlu.components.test_crf import SHOP_YAML

    data = tmp_path / "shop.yml"
    data.write_text(SHOP_YAML, encoding="utf-8")
    assert invoke("train", "--data", data, "--out", tmp_path / "model").exit_code == 0
    result = invoke("test", "--model", tmp_path / "model", "--data", data, "--json", "--errors")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    entities = report["entities"]
    assert report["intent"]["accuracy"] > 0.9 and entities["f1"] > 0.9
    # the phone number annotated as "account" is the phone rule's: that type scores 0 in the macro
    assert entities["per_entity"]["account"]["f1"] == 0.0 and entities["macro_f1"] >= 0.8
    assert {"district", "city", "product_model", "quantity"} <= set(entities["per_entity"])
    assert set(entities["per_entity"]["district"]) == {"precision", "recall", "f1", "support"}
    assert isinstance(report["entity_errors"], list)


def test_train_with_a_catalog_learns_its_product_names_as_a_lookup(tiny_data_file, tmp_path):
    catalog = tmp_path / "shop.yml"
    catalog.write_text("products:\n  - sku: HP-20\n    name: Tai nghe chụp tai Âm Vang X2\n"
                       "    name_en: Âm Vang X2 over-ear headphones\n", encoding="utf-8")
    result = invoke("train", "--data", tiny_data_file, "--catalog", catalog, "--out", tmp_path / "model")
    assert result.exit_code == 0, result.output
    for text, surface in [("tai nghe chup tai con ko", "tai nghe chup tai"), ("HP-20 giá sao", "HP-20"),
                          ("do you have the over-ear headphones", "over-ear headphones")]:
        payload = json.loads(invoke("parse", "--model", tmp_path / "model", text).output)
        products = [text[e["start"]:e["end"]] for e in payload["entities"] if e["entity"] == "product"]
        assert products == [surface], payload["entities"]


def test_train_with_a_catalog_that_is_not_one_fails_with_the_file_and_reason(tiny_data_file, tmp_path):
    catalog = tmp_path / "shop.yml"
    catalog.write_text("orders: []\n", encoding="utf-8")
    result = invoke("train", "--data", tiny_data_file, "--catalog", catalog, "--out", tmp_path / "model")
    assert result.exit_code == 2
    assert f"{catalog}: a catalog needs a 'products' list" in " ".join(result.output.split())
    assert not (tmp_path / "model").exists()

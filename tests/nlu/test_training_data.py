"""Reading and writing Rasa 3 YAML training data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import TrainingDataError, load_training_data, write_training_data
from nlu.training_data import EntityAnnotation, read_training_yaml

REPO_DATA = Path(__file__).resolve().parents[2] / "data" / "nlu"


def write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> TrainingDataError:
    path = write(tmp_path, text)
    with pytest.raises(TrainingDataError) as caught:
        load_training_data([path])
    return caught.value


def test_reads_block_examples_per_intent(tiny_data):
    assert tiny_data.intents == ["order_status", "ask_warranty_policy", "talk_to_human", "greet"]
    assert sum(1 for e in tiny_data.examples if e.intent == "greet") == 8
    assert tiny_data.examples[1].text == "kiểm tra giúp em đơn hàng với"


def test_reads_inline_annotation_as_plain_text_with_offsets(tiny_data):
    example = tiny_data.examples[0]
    assert example.text == "đơn hàng DH123456 của mình đang ở đâu"
    assert example.entities == [EntityAnnotation("order_id", "DH123456", 9, 17)]


def test_reads_json_annotation_with_value_role_and_group():
    data = read_training_yaml(
        "nlu:\n- intent: buy\n  examples: |\n"
        '    - mua [noi com]{"entity": "product", "value": "nồi cơm điện", "role": "item", "group": "1"} nhé\n'
    )
    assert data.examples[0].text == "mua noi com nhé"
    assert data.examples[0].entities == [EntityAnnotation("product", "nồi cơm điện", 4, 11, "item", "1")]


def test_reads_legacy_entity_value_annotation_as_synonym():
    data = read_training_yaml("nlu:\n- intent: buy\n  examples: |\n    - mua [ip](product:iphone) đi\n")
    assert data.examples[0].entities == [EntityAnnotation("product", "iphone", 4, 6)]
    assert data.synonym_map() == {"ip": "iphone"}


def test_reads_list_form_examples_with_metadata():
    data = read_training_yaml(
        'version: "3.1"\nnlu:\n- intent: greet\n  metadata: {sentiment: neutral}\n  examples:\n'
        "  - text: |\n      chào [shop](target)\n    metadata: {lang: vi}\n  - text: hello\n"
    )
    assert [e.text for e in data.examples] == ["chào shop", "hello"]
    assert data.examples[0].metadata == {"lang": "vi"}
    assert data.intent_metadata == {"greet": {"sentiment": "neutral"}}


def test_reads_synonym_regex_and_lookup_items(tiny_data):
    data = read_training_yaml(
        "nlu:\n- regex: order_id\n  examples: |\n    - DH\\d{6}\n- lookup: city\n  examples: |\n    - Hà Nội\n"
        "- synonym: bảo hành\n  examples: |\n    - bh\n"
    )
    assert [(r.name, r.patterns) for r in data.regexes] == [("order_id", [r"DH\d{6}"])]
    assert [(t.name, t.elements) for t in data.lookups] == [("city", ["Hà Nội"])]
    assert data.synonyms == {"bảo hành": ["bh"]}
    assert tiny_data.synonyms == {"nồi cơm điện": ["noi com dien", "nồi cơm"]}


def test_ignores_responses_stories_and_rules():
    data = read_training_yaml(
        "version: '3.1'\nnlu:\n- intent: greet\n  examples: |\n    - hi\n"
        "responses:\n  utter_greet:\n  - text: hello\nstories: []\nrules:\n- rule: r\n  steps: []\n"
    )
    assert [e.text for e in data.examples] == ["hi"]


def test_loads_directories_recursively_in_name_order(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "nlu:\n- intent: b\n  examples: |\n    - second\n", "b.yml")
    write(tmp_path / "sub", "nlu:\n- intent: a\n  examples: |\n    - third\n", "a.yml")
    write(tmp_path, "nlu:\n- intent: a\n  examples: |\n    - first\n", "a.yaml")
    data = load_training_data([tmp_path])
    assert [e.text for e in data.examples] == ["first", "second", "third"]


def test_example_remembers_its_source_line(tmp_path):
    path = write(tmp_path, 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello\n')
    data = load_training_data([path])
    assert [(e.source_file, e.source_line) for e in data.examples] == [(str(path), 5), (str(path), 6)]


def test_invalid_yaml_names_file_and_line(tmp_path):
    error = error_for(tmp_path, "nlu:\n- intent: greet\n  examples: |\n    - hi\n - bad: [\n")
    assert error.file.endswith("nlu.yml") and error.line == 5
    assert str(error).startswith(f"{error.file}:5: invalid YAML")


def test_missing_examples_is_an_error(tmp_path):
    error = error_for(tmp_path, "nlu:\n- intent: greet\n- intent: bye\n  examples: |\n    - bye\n")
    assert (error.line, error.message) == (2, "intent 'greet' has no 'examples'")


def test_intent_without_examples_is_an_error(tmp_path):
    error = error_for(
        tmp_path, "nlu:\n- intent: greet\n  examples: |\n\n- intent: bye\n  examples: |\n    - bye\n"
    )
    assert error.line == 3 and "has no examples" in error.message


def test_unbalanced_annotation_bracket_is_an_error(tmp_path):
    error = error_for(
        tmp_path, "nlu:\n- intent: order\n  examples: |\n    - ok\n    - đơn [DH123456(order_id) đâu\n"
    )
    assert error.line == 5 and "unbalanced" in error.message


def test_annotation_without_closing_parenthesis_is_an_error(tmp_path):
    error = error_for(tmp_path, "nlu:\n- intent: order\n  examples: |\n    - đơn [DH123456](order_id đâu\n")
    assert error.line == 4 and "annotation" in error.message


def test_unknown_top_level_key_is_an_error(tmp_path):
    error = error_for(tmp_path, "version: '3.1'\nintents:\n- greet\n")
    assert error.line == 2 and "unknown top-level key 'intents'" in error.message


def test_example_line_without_dash_is_an_error(tmp_path):
    error = error_for(tmp_path, "nlu:\n- intent: greet\n  examples: |\n    - hi\n    hello\n")
    assert error.line == 5 and "must start with '- '" in error.message


def test_invalid_regex_is_an_error(tmp_path):
    error = error_for(tmp_path, "nlu:\n- regex: order_id\n  examples: |\n    - DH(\\d+\n")
    assert error.line == 4 and "invalid regular expression" in error.message


def test_missing_path_is_an_error(tmp_path):
    with pytest.raises(TrainingDataError, match="no such file or directory"):
        load_training_data([tmp_path / "nope.yml"])


def test_round_trip_reproduces_equal_data(tmp_path):
    source = (
        'version: "3.1"\nnlu:\n- intent: order\n  metadata: {priority: high}\n  examples:\n'
        "  - text: đơn [DH123456](order_id) đâu\n    metadata: {lang: vi}\n  - text: 'where is #12: [x](y:z)'\n"
        '- intent: warranty\n  examples: |\n    - [nồi cơm]{"entity": "product", "value": "nồi cơm điện"} bảo hành\n'
        '    - [a]{"entity": "product", "role": "old"} và [b](product)\n'
        "- synonym: nồi cơm điện\n  examples: |\n    - noi com dien\n"
        "- regex: order_id\n  examples: |\n    - DH\\d{6}\n- lookup: product\n  examples: |\n    - máy lọc\n"
    )
    data = read_training_yaml(source)
    path = tmp_path / "out.yml"
    write_training_data(data, path)
    again = load_training_data([path])
    assert again == data
    assert again.to_yaml() == data.to_yaml()


@pytest.mark.skipif(
    not REPO_DATA.is_dir() or not any(REPO_DATA.glob("*.yml")), reason="data/nlu not written yet"
)
def test_round_trip_of_project_training_data():
    data = load_training_data([REPO_DATA])
    assert read_training_yaml(data.to_yaml()) == data

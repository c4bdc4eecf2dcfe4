"""Every Rasa entity annotation form read into examples with character spans, and every kind of bad
entity data rejected with its file, line and reason (by the reader, by training, by the CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlu import ModelStore, TrainingData, TrainingDataError, load_training_data, train_model
from nlu.cli import app
from nlu.training_data import EntityAnnotation, TrainingExample

ALL_FORMS_YAML = """\
version: "3.1"
nlu:
- intent: ask_delivery
  examples: |
    - giao về [Đà Nẵng](city) mất mấy ngày
    - ship ra [HN](city:Hà Nội) bao lâu
    - bay từ [Huế]{"entity": "city", "role": "from"} tới [Sài Gòn]{"entity": "city", "role": "to", "value": "Hồ Chí Minh"}
    - [2]{"entity": "quantity", "group": "1"} cái [quạt]{"entity": "product", "group": "1"} màu [đen](color)
- intent: ask_price
  examples:
  - text: giá [tủ lạnh](product) bao nhiêu
    metadata: {source: review}
- synonym: Hồ Chí Minh
  examples: |
    - sài gòn
    - tphcm
- regex: zip_code
  examples: |
    - \\b\\d{6}\\b
- lookup: city
  examples: |
    - Cần Thơ
    - Hải Phòng
"""


def write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_for(tmp_path: Path, text: str) -> TrainingDataError:
    path = write(tmp_path, text)
    with pytest.raises(TrainingDataError) as caught:
        load_training_data([path])
    assert caught.value.file == str(path)
    return caught.value


def spans(example: TrainingExample) -> list[tuple[str, str, str | None, str | None, str]]:
    return [(e.entity, e.value, e.role, e.group, example.text[e.start : e.end]) for e in example.entities]


def test_every_annotation_form_becomes_character_spans(tmp_path):
    data = load_training_data([write(tmp_path, ALL_FORMS_YAML)])
    plain, valued, roles, groups, listed = data.examples
    assert plain.text == "giao về Đà Nẵng mất mấy ngày"
    assert plain.entities == [EntityAnnotation("city", "Đà Nẵng", 8, 15)]
    assert spans(valued) == [("city", "Hà Nội", None, None, "HN")]
    assert spans(roles) == [
        ("city", "Huế", "from", None, "Huế"),
        ("city", "Hồ Chí Minh", "to", None, "Sài Gòn"),
    ]
    assert spans(groups) == [
        ("quantity", "2", None, "1", "2"),
        ("product", "quạt", None, "1", "quạt"),
        ("color", "đen", None, None, "đen"),
    ]
    assert spans(listed) == [("product", "tủ lạnh", None, None, "tủ lạnh")] and listed.metadata == {
        "source": "review"
    }
    assert data.entity_types == ["city", "color", "product", "quantity"]


def test_synonyms_come_from_blocks_and_inline_values(tmp_path):
    data = load_training_data([write(tmp_path, ALL_FORMS_YAML)])
    assert data.synonym_map() == {
        "HN": "Hà Nội",
        "Sài Gòn": "Hồ Chí Minh",
        "sài gòn": "Hồ Chí Minh",
        "tphcm": "Hồ Chí Minh",
    }


def test_regex_and_lookup_tables_are_kept(tmp_path):
    data = load_training_data([write(tmp_path, ALL_FORMS_YAML)])
    assert [(r.name, r.patterns) for r in data.regexes] == [("zip_code", [r"\b\d{6}\b"])]
    assert [(t.name, t.elements) for t in data.lookups] == [("city", ["Cần Thơ", "Hải Phòng"])]


def test_annotation_with_invalid_json_is_an_error(tmp_path):
    error = error_for(
        tmp_path, 'nlu:\n- intent: a\n  examples: |\n    - ok\n    - ship [Huế]{"entity": city} nhé\n'
    )
    assert error.line == 5 and "invalid JSON entity annotation" in error.message


def test_annotation_with_an_unknown_key_is_an_error(tmp_path):
    error = error_for(
        tmp_path, 'nlu:\n- intent: a\n  examples: |\n    - ship [Huế]{"entity": "city", "rol": "to"}\n'
    )
    assert error.line == 4 and "unknown key 'rol'" in error.message


def test_annotation_without_entity_name_is_an_error(tmp_path):
    error = error_for(tmp_path, "nlu:\n- intent: a\n  examples: |\n    - ship [Huế]() nhé\n")
    assert error.line == 4 and "without an entity name" in error.message


def test_nested_annotation_is_an_error(tmp_path):
    error = error_for(tmp_path, "nlu:\n- intent: a\n  examples: |\n    - [quạt [đen](color)](product)\n")
    assert error.line == 4 and "annotation" in error.message


def test_crossing_entity_spans_are_an_error_when_training(tmp_path):
    data = TrainingData(
        examples=[
            TrainingExample(
                "mua quạt đen",
                "buy",
                [EntityAnnotation("product", "quạt đen", 4, 12), EntityAnnotation("color", "đen", 9, 12)],
                source_file="review",
                source_line=7,
            )
        ]
    )
    with pytest.raises(TrainingDataError) as caught:
        train_model(data, tmp_path / "model")
    assert (caught.value.file, caught.value.line) == ("review", 7)
    assert "entity spans cross" in caught.value.message and not (tmp_path / "model").exists()


def test_span_outside_the_text_is_an_error():
    example = TrainingExample("mua quạt", "buy", [EntityAnnotation("product", "quạt", 4, 20)])
    with pytest.raises(TrainingDataError, match="outside"):
        TrainingData(examples=[example]).validate()


def test_synonym_mapped_to_two_values_across_block_and_annotation_is_an_error(tmp_path):
    error = error_for(
        tmp_path,
        "nlu:\n- intent: a\n  examples: |\n    - ship ra [HN](city:Hà Nội) nhé\n"
        "- synonym: Hải Nam\n  examples: |\n    - hn\n",
    )
    assert error.line == 7 and "maps to 'Hải Nam' here but to 'Hà Nội' at" in error.message
    assert error.message.endswith("nlu.yml:4")


def test_synonym_mapped_to_two_values_in_two_files_is_an_error(tmp_path):
    write(tmp_path, "nlu:\n- synonym: đen\n  examples: |\n    - black\n", "a.yml")
    write(tmp_path, "nlu:\n- synonym: đèn\n  examples: |\n    - lamp\n    - Black\n", "b.yml")
    with pytest.raises(TrainingDataError) as caught:
        load_training_data([tmp_path])
    assert caught.value.file.endswith("b.yml") and caught.value.line == 5


def test_same_synonym_repeated_with_the_same_value_is_fine(tmp_path):
    data = load_training_data(
        [
            write(
                tmp_path,
                "nlu:\n- intent: a\n  examples: |\n    - [HN](city:Hà Nội)\n    - ra [HN](city:Hà Nội)\n"
                "- synonym: Hà Nội\n  examples: |\n    - HN\n    - ha noi\n",
            )
        ]
    )
    assert data.synonym_map() == {"HN": "Hà Nội", "ha noi": "Hà Nội"}


def test_regex_that_does_not_compile_names_its_line(tmp_path):
    error = error_for(tmp_path, "nlu:\n- regex: zip_code\n  examples: |\n    - \\d{6}\n    - [0-9\n")
    assert error.line == 5 and "invalid regular expression in regex 'zip_code'" in error.message


def test_cli_train_with_bad_entities_fails_and_the_active_model_keeps_serving(tiny_data_file, tmp_path):
    runner = CliRunner()
    store_dir = tmp_path / "store"
    trained = runner.invoke(app, ["train", "--data", str(tiny_data_file), "--models-dir", str(store_dir)])
    assert trained.exit_code == 0, trained.output
    store = ModelStore(store_dir)
    active = store.active_version()
    bad = write(
        tmp_path,
        "nlu:\n- intent: greet\n  examples: |\n    - hi\n    - [HN](city:Hà Nội)\n"
        "- synonym: Hải Nam\n  examples: |\n    - HN\n",
        "bad.yml",
    )
    result = runner.invoke(
        app, ["train", "--data", str(bad), "--models-dir", str(store_dir), "--activate"]
    )
    assert result.exit_code == 2
    assert f"{bad}:8:" in " ".join(result.output.split()) and "maps to" in result.output
    assert store.active_version() == active and len(store.versions()) == 1
    assert store.load_active().parse("xin chào").intent.name == "greet"

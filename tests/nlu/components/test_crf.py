"""The learned (CRF) entity extractor, trained with the default pipeline on a small Vietnamese set:
learned entities in unseen sentences with and without diacritics, synonyms, roles, groups, the rule
extractors' precedence, persistence, and no CRF at all for data without entities."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu import load_model, train_model
from nlu.components.crf import (
    CRFEntityExtractor,
    bilou_tags,
    bio_tags,
    decode_bilou,
    partition_intents,
    sentence_features,
    tokenize,
    word_shape,
)
from nlu.training_data import read_training_yaml

SHOP_YAML = """\
version: "3.1"
nlu:
- intent: ask_delivery
  examples: |
    - giao hàng về [Cầu Giấy](district) mất mấy ngày
    - ship về [Hoàn Kiếm](district) bao lâu thì tới
    - mình ở [Bình Thạnh](district) giao có nhanh không
    - shop có giao tới [Thủ Đức](district) không
    - nhà em ở [Hải Châu](district) thì mấy hôm nhận được hàng
    - giao về [Ba Đình](district) có mất phí ship không
    - đặt hàng ở [Đống Đa](district) bao giờ giao
    - [Tân Bình](district) có được giao trong ngày không shop
    - ship ra [Gò Vấp](district) hết bao nhiêu tiền
    - mình sống ở [Cầu Giấy](district) muốn đặt giao tận nhà
    - giao tới [Hoàn Kiếm](district) trong ngày được không
    - bên em ở [Thủ Đức](district) ship mất mấy ngày ạ
    - [cg](district:Cầu Giấy) có giao hỏa tốc không
    - giao hàng về [Ba Đình](district) bao lâu
    - có ship tới [Bình Thạnh](district) không ạ
    - chuyển hàng từ [Hà Nội]{"entity": "city", "role": "from"} về [Đà Nẵng]{"entity": "city", "role": "to"} mất bao lâu
    - gửi từ [Huế]{"entity": "city", "role": "from"} về [Hà Nội]{"entity": "city", "role": "to"} được không
    - ship từ [Đà Nẵng]{"entity": "city", "role": "from"} ra [Huế]{"entity": "city", "role": "to"} mấy ngày
    - hàng đi từ [Cần Thơ]{"entity": "city", "role": "from"} về [Đà Nẵng]{"entity": "city", "role": "to"} lâu không
    - từ [Hà Nội]{"entity": "city", "role": "from"} giao vào [Cần Thơ]{"entity": "city", "role": "to"} bao lâu
    - kho ở [Huế]{"entity": "city", "role": "from"} gửi về [Cần Thơ]{"entity": "city", "role": "to"} mất mấy hôm
- intent: ask_price
  examples: |
    - máy lọc nước [KG-2201](product_model) giá bao nhiêu
    - giá của [SHD8955](product_model) là bao nhiêu vậy
    - nồi chiên [AF-5000](product_model) bán bao nhiêu tiền
    - cho mình hỏi giá [KG-3100](product_model)
    - [SHD7720](product_model) đang có giá bao nhiêu shop
    - quạt [FS-1600](product_model) giá sao ạ
    - mẫu [AF-6200](product_model) còn hàng và giá thế nào
    - báo giá giúp em [SHD8100](product_model) với
    - bếp từ [KG-4400](product_model) bao nhiêu tiền vậy
    - giá [FS-2100](product_model) hiện tại là bao nhiêu
    - gọi lại cho mình số [0912 345 678](account) để báo giá nhé
    - mua [2]{"entity": "quantity", "group": "1"} cái [SHD8955]{"entity": "product_model", "group": "1"} và [1]{"entity": "quantity", "group": "2"} cái [KG-2201]{"entity": "product_model", "group": "2"} hết bao nhiêu
    - lấy [3]{"entity": "quantity", "group": "1"} cái [AF-5000]{"entity": "product_model", "group": "1"} và [2]{"entity": "quantity", "group": "2"} cái [FS-1600]{"entity": "product_model", "group": "2"} giá sao
    - đặt [1]{"entity": "quantity", "group": "1"} cái [KG-3100]{"entity": "product_model", "group": "1"} và [4]{"entity": "quantity", "group": "2"} cái [SHD7720]{"entity": "product_model", "group": "2"} nhé
    - cần [2]{"entity": "quantity", "group": "1"} cái [FS-2100]{"entity": "product_model", "group": "1"} với [1]{"entity": "quantity", "group": "2"} cái [AF-6200]{"entity": "product_model", "group": "2"} thì giá sao
- intent: greet
  examples: |
    - xin chào shop
    - chào bạn nhé
    - alo shop ơi
    - hello shop
    - chào buổi sáng
    - hi ad
- synonym: Cầu Giấy
  examples: |
    - cau giay
"""

PLAIN_YAML = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - xin chào shop
    - chào bạn nhé
    - alo shop ơi
- intent: ask_price
  examples: |
    - giá bao nhiêu vậy
    - bán bao nhiêu tiền
    - cho mình hỏi giá
"""


@pytest.fixture(scope="module")
def shop_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(read_training_yaml(SHOP_YAML, "shop.yml"), tmp_path_factory.mktemp("crf") / "shop")


@pytest.fixture(scope="module")
def shop(shop_model_dir: Path):
    return load_model(shop_model_dir)


def found(interpreter, text: str, extractor: str = "CRFEntityExtractor") -> list[tuple[str, str]]:
    return [
        (e.entity, text[e.start : e.end]) for e in interpreter.parse(text).entities if e.extractor == extractor
    ]


def test_tokens_keep_their_character_offsets():
    text = "Giao về Cầu Giấy, KG-2201 nhé"
    assert [(t, text[s:e] == t) for t, s, e in tokenize(text)][:4] == [
        ("Giao", True),
        ("về", True),
        ("Cầu", True),
        ("Giấy", True),
    ]
    assert [t for t, _, _ in tokenize(text)][4:] == [",", "KG", "-", "2201", "nhé"]


def test_word_shape_collapses_runs():
    assert [word_shape(w) for w in ("Đà", "SHD8955", "giao", "4.5")] == ["Xx", "Xd", "x", "d.d"]


def test_the_context_window_reaches_as_far_as_configured():
    tokens = tokenize("giao về Cầu Giấy trong ngày nhé")
    hits = [[] for _ in tokens]
    narrow, wide = sentence_features(tokens, hits, window=2), sentence_features(tokens, hits, window=3)
    # "giấy" (token 3) sees "giao" three tokens back and "nhé" three ahead only in the wide window.
    assert "-3=giao" not in narrow[3] and "+3=nhe" not in narrow[3]
    assert {"-3=giao", "+3=nhe", "-2=ve", "+2=ngay"} <= set(wide[3])
    assert "-3=<s>" in wide[0] and "+3=</s>" in wide[-1]


def test_neighbour_hits_and_wide_pairs_are_added_only_when_asked():
    tokens = tokenize("giao về Cầu Giấy nhé")
    hits = [[], [], ["lk:district"], ["lk:district>"], []]
    plain = sentence_features(tokens, hits)
    rich = sentence_features(tokens, hits, hit_window=1, wide_pairs=True)
    assert "+1lk:district" not in plain[1] and "-2|-1=giao|ve" not in plain[2]
    assert "+1lk:district" in rich[1] and "-1lk:district>" in rich[4] and "-1lk:district" in rich[3]
    assert "-2|-1=giao|ve" in rich[2] and "+1|+2=giay|nhe" in rich[2] and "-2|-1=<s>|<s>" in rich[0]


def test_bilou_round_trip():
    tokens = tokenize("ship từ Hà Nội về Huế")
    tags = bilou_tags(tokens, [(8, 14, "city"), (18, 21, "city")])
    assert tags == ["O", "O", "B-city", "L-city", "O", "U-city"]
    assert decode_bilou(tags) == [(2, 3, "city"), (5, 5, "city")]
    assert decode_bilou(["I-city", "L-city", "O", "B-x", "I-x"]) == [(0, 1, "city"), (3, 4, "x")]


def test_bio_tags_keep_adjacent_entities_apart():
    tokens = tokenize("ship từ Hà Nội Huế")
    tags = bio_tags(bilou_tags(tokens, [(8, 14, "city"), (15, 18, "city")]))
    assert tags == ["O", "O", "B-city", "I-city", "B-city"]
    assert decode_bilou(tags) == [(2, 3, "city"), (4, 4, "city")]


@pytest.mark.parametrize("tagging", ["bio", "bilou"])
def test_both_tagging_schemes_learn_the_entities(tagging):
    crf = CRFEntityExtractor({"tagging": tagging})
    crf.train([], read_training_yaml(SHOP_YAML, "shop.yml"))
    labels = {label for model in crf.taggers.values() for label in model.labels()}
    assert ("L-district" in labels) == (tagging == "bilou")
    assert [e["value"] for e in crf.extract("giao về Đống Đa bao lâu", "ask_delivery")] == ["Đống Đa"]


def test_an_unknown_tagging_scheme_is_refused_with_its_name():
    with pytest.raises(ValueError, match="'biluo'"):
        CRFEntityExtractor({"tagging": "biluo"}).train([], read_training_yaml(SHOP_YAML, "shop.yml"))


def test_intents_sharing_few_entity_types_share_one_crf():
    assert partition_intents({"a": {"x"}, "b": {"x", "y"}, "c": set()}, 12) == [{"a", "b", "c"}]
    groups = partition_intents({"a": {"x", "y"}, "b": {"y", "z"}, "c": {"p", "q"}}, 3)
    assert sorted(map(sorted, groups)) == [["a", "b"], ["c"]]


def test_learned_entity_is_found_in_unseen_sentences_with_and_without_diacritics(shop):
    assert found(shop, "cho em hỏi giao về Đống Đa thì mấy ngày") == [("district", "Đống Đa")]
    assert found(shop, "cho em hoi giao ve dong da thi may ngay") == [("district", "dong da")]
    assert found(shop, "nhà mình ở Gò Vấp, ship có nhanh không") == [("district", "Gò Vấp")]
    assert found(shop, "nha minh o go vap ship co nhanh khong") == [("district", "go vap")]


def test_unseen_product_model_is_found_by_its_shape_and_context(shop):
    assert found(shop, "giá của SHD9990 là bao nhiêu") == [("product_model", "SHD9990")]
    assert found(shop, "cho minh hoi gia KG-5500 voi") == [("product_model", "KG-5500")]


def test_entities_have_rasas_shape_with_a_confidence(shop):
    entity = next(e for e in shop.parse("giao về Đống Đa bao lâu").to_rasa()["entities"])
    assert set(entity) == {"entity", "start", "end", "value", "confidence_entity", "extractor"}
    assert entity["extractor"] == "CRFEntityExtractor" and 0.5 < entity["confidence_entity"] <= 1.0


def test_synonyms_map_crf_values_and_say_so(shop):
    for text in ("giao về cau giay mất mấy ngày", "cg có giao hỏa tốc không"):
        entity = next(e for e in shop.parse(text).to_rasa()["entities"] if e["entity"] == "district")
        assert entity["value"] == "Cầu Giấy" and entity["processors"] == ["EntitySynonymMapper"]
    untouched = shop.parse("giao về Cầu Giấy mất mấy ngày").to_rasa()["entities"][0]
    assert untouched["value"] == "Cầu Giấy" and "processors" not in untouched


def test_roles_are_learned(shop):
    entities = shop.parse("gửi từ Cần Thơ về Huế mất mấy ngày").entities
    assert [(e.entity, e.value, e.role) for e in entities] == [
        ("city", "Cần Thơ", "from"),
        ("city", "Huế", "to"),
    ]


def test_groups_are_learned(shop):
    entities = shop.parse("mua 2 cái KG-2201 và 1 cái AF-5000 hết bao nhiêu").entities
    assert [(e.entity, e.value, e.group) for e in entities] == [
        ("quantity", "2", "1"),
        ("product_model", "KG-2201", "1"),
        ("quantity", "1", "2"),
        ("product_model", "AF-5000", "2"),
    ]


def test_rule_extractors_keep_precedence_where_they_match(shop):
    entities = shop.parse("gọi lại cho mình số 0987 654 321 để báo giá nhé").entities
    assert [(e.entity, e.value, e.extractor) for e in entities] == [
        ("phone", "0987654321", "RegexEntityExtractor")
    ]


def test_crf_survives_saving_and_loading(shop, shop_model_dir: Path):
    files = sorted(p.name for p in shop_model_dir.glob("*_CRFEntityExtractor/*"))
    assert "entity.0.crfsuite" in files and "role.0.crfsuite" in files and "crf.json" in files
    reloaded = load_model(shop_model_dir)
    text = "ship ra Tân Bình bao lâu"
    assert reloaded.parse(text).to_rasa()["entities"] == shop.parse(text).to_rasa()["entities"]


def test_data_without_entities_trains_no_crf(tmp_path):
    model_dir = train_model(read_training_yaml(PLAIN_YAML, "plain.yml"), tmp_path / "plain")
    assert not list(model_dir.glob("*_CRFEntityExtractor/*.crfsuite"))
    assert load_model(model_dir).parse("giá bao nhiêu vậy").entities == []


def test_many_entity_types_are_split_by_intent_and_tagged_by_the_predicted_intents_crf():
    crf = CRFEntityExtractor({"max_entity_types_per_model": 2})
    crf.train([], read_training_yaml(SHOP_YAML, "shop.yml"))
    assert crf.default_partition is None and set(crf.routes) == {"ask_delivery", "ask_price"}
    assert crf.routes["ask_delivery"] != crf.routes["ask_price"]
    text = "giao về Đống Đa bao lâu"
    assert [e["value"] for e in crf.extract(text, "ask_delivery")] == ["Đống Đa"]
    assert crf.extract(text, "greet") == []  # an intent without entities has no CRF


HOTEL_YAML = """\
nlu:
- intent: book_hotel
  examples: |
    - đặt phòng khách sạn [5 sao](hotel_class) ở Đà Nẵng
    - tìm giúp mình khách sạn [4 sao](hotel_class) gần biển
    - có khách sạn [3 sao](hotel_class) nào rẻ không
    - mình muốn ở khách sạn [5 sao](hotel_class) cuối tuần này
    - khách sạn [2 sao](hotel_class) giá bao nhiêu một đêm
    - gọi cho mình số [0912 345 678](callback) để đặt khách sạn [4 sao](hotel_class)
- intent: greet
  examples: |
    - xin chào
    - chào bạn
"""


def test_a_rule_of_a_type_the_data_does_not_annotate_yields_to_the_learned_entity(tmp_path):
    hotel = load_model(train_model(read_training_yaml(HOTEL_YAML, "hotel.yml"), tmp_path / "hotel"))
    entities = hotel.parse("tìm khách sạn 3 sao ở Huế, gọi 0987 654 321 nhé").entities
    assert [(e.entity, e.value, e.extractor) for e in entities] == [
        ("hotel_class", "3 sao", "CRFEntityExtractor"),
        ("phone", "0987654321", "RegexEntityExtractor"),
    ]


def test_the_same_data_trains_the_same_crf_whatever_ran_before():
    import random

    from nlu.components.crf import _train_tagger

    rng = random.Random(7)
    sequences = [[[f"w={rng.randint(0, 50)}", f"x={rng.randint(0, 9)}"] for _ in range(8)] for _ in range(300)]
    labels = [[rng.choice(["O", "U-a", "U-b"]) for _ in range(8)] for _ in range(300)]
    params = {"algorithm": "ap", "max_iterations": 5, "feature.minfreq": 1}
    # The averaged perceptron shuffles with the C library's rand(), which the first run advances.
    assert _train_tagger(sequences, labels, params) == _train_tagger(sequences, labels, params)


def test_lookup_hits_mark_multi_token_elements_and_their_continuations():
    from nlu.components.crf import FeatureTables

    tables = FeatureTables({"code": [r"DH\d+"]}, {"city": ["hồ chí minh", "huế"], "place": ["ho chi"]})
    text = "giao DH123 về Ho Chi Minh, rồi ra Huế"
    marks = tables.hits(text, tokenize(text))
    assert marks[1] == ["re:code"]
    assert sorted(marks[3]) == ["lk:city", "lk:place"]
    assert sorted(marks[4]) == ["lk:city>", "lk:place>"] and marks[5] == ["lk:city>"]
    assert marks[9] == ["lk:city"] and marks[0] == marks[2] == marks[6] == []


def test_an_example_seen_by_several_intent_crfs_is_tagged_with_each_crfs_own_types():
    crf = CRFEntityExtractor({"max_entity_types_per_model": 2})
    crf.train([], read_training_yaml(SHOP_YAML, "shop.yml"))
    price = crf.routes["ask_price"]
    # the price CRF borrows no delivery example (they share no type) and tags only its own types
    tagger = crf.taggers[f"entity.{price}"]
    price_types = {label.partition("-")[2] for label in tagger.labels()} - {""}
    assert price_types <= {"product_model", "quantity", "account"}
    delivery = crf.routes["ask_delivery"]
    delivery_types = {label.partition("-")[2] for label in crf.taggers[f"entity.{delivery}"].labels()} - {""}
    assert delivery_types == {"district", "city"}


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"algorithm": "sgd"}, "unknown crfsuite algorithm 'sgd'"),
        ({"crfsuite_params": {"c": 0.2}}, "'c' is not an option of crfsuite's lbfgs"),
        ({"algorithm": "pa", "crfsuite_params": {"c2": 1}}, "'c2' is not an option of crfsuite's pa"),
        ({"crfsuite_params": ["c", 1]}, "crfsuite_params must map"),
    ],
)
def test_bad_crfsuite_options_are_refused_when_the_config_is_read(tmp_path, options, reason):
    from nlu import NLUConfigError
    from nlu.pipeline import check_pipeline_config

    with pytest.raises(NLUConfigError, match=reason):
        check_pipeline_config({"pipeline": [{"name": "CRFEntityExtractor", **options}]}, "config.yml")
    passive_aggressive = {
        "name": "CRFEntityExtractor", "algorithm": "pa", "crfsuite_params": {"type": 2, "c": 0.2}
    }
    check_pipeline_config({"pipeline": [passive_aggressive]}, "config.yml")


def test_rare_marks_name_tokens_met_in_few_training_examples_and_their_neighbours():
    from nlu.components.crf_features import FeatureTables

    tables = FeatureTables.from_data(read_training_yaml(SHOP_YAML, "shop.yml"))
    tokens = tokenize("giao về Mahmoud bao lâu")
    marks: list[list[str]] = [[] for _ in tokens]
    tables.rare_marks(tokens, marks, 1)
    assert marks == [[], ["+1rare"], ["rare"], ["-1rare"], []]


@pytest.mark.parametrize(
    "options", [{"ensemble": 3}, {"rare_count": 1}, {"unseen_copies": True, "unseen_outside": 1}]
)
def test_recall_experiments_still_learn_the_entities_and_survive_saving(tmp_path, options):
    crf = CRFEntityExtractor(options)
    crf.train([], read_training_yaml(SHOP_YAML, "shop.yml"))
    assert len([key for key in crf.models if key.startswith("entity.")]) == options.get("ensemble", 1)
    text = "cho em hỏi giao về Đống Đa thì mấy ngày"
    assert [e["value"] for e in crf.extract(text, "ask_delivery")] == ["Đống Đa"]
    crf.persist(tmp_path)
    loaded = CRFEntityExtractor.load(tmp_path, crf.config)
    assert loaded.extract(text, "ask_delivery") == crf.extract(text, "ask_delivery")

"""Rule-based entity extractors and the synonym mapper."""

from __future__ import annotations

import pytest

from nlu.components.entities import (
    EntitySynonymMapper,
    LookupEntityExtractor,
    RatingExtractor,
    RegexEntityExtractor,
)
from nlu.message import Message
from nlu.training_data import read_training_yaml


def found(entities, text):
    return [(e["entity"], e["value"], text[e["start"] : e["end"]]) for e in entities]


def regex_entities(text, extractor=None):
    return found((extractor or RegexEntityExtractor()).extract(text), text)


@pytest.mark.parametrize(
    ("text", "surface", "value"),
    [
        ("kiểm tra đơn DH123456 giúp em", "DH123456", "DH123456"),
        ("đơn dh204891 giao chưa", "dh204891", "DH204891"),
        ("tình trạng đơn #DH100002 thế nào", "#DH100002", "DH100002"),
        ("mã ĐH-100345 nhé", "ĐH-100345", "DH100345"),
    ],
)
def test_order_codes_are_extracted_and_normalised(text, surface, value):
    assert regex_entities(text) == [("order_id", value, surface)]


def test_bare_order_number_after_order_word_is_an_order_id():
    assert regex_entities("don hang 2409153210 dang o dau") == [("order_id", "2409153210", "2409153210")]
    assert regex_entities("my order number is 240915321, thanks") == [("order_id", "240915321", "240915321")]


def test_number_without_order_context_is_not_an_order_id():
    assert regex_entities("mình mua 2409153 cái") == []


@pytest.mark.parametrize(
    "surface",
    [
        "0901234567",
        "090 123 4567",
        "090.123.4567",
        "0901 234 567",
        "090-123-4567",
        "+84 901 234 567",
        "+84901234567",
        "84 901 234 567",
        "(+84) 901234567",
        "0084 901 234 567",
    ],
)
def test_each_vietnamese_phone_format_is_normalised(surface):
    assert regex_entities(f"gọi lại số {surface} giúp mình") == [("phone", "0901234567", surface)]


def test_landline_phone_is_extracted():
    assert regex_entities("tổng đài 028 3822 1234 nhé") == [("phone", "02838221234", "028 3822 1234")]


def test_too_short_number_is_not_a_phone():
    assert regex_entities("số 090123456 thiếu số") == []


@pytest.mark.parametrize("surface", ["SN100001", "SN-2024-88812", "sn773201"])
def test_serials_are_extracted(surface):
    assert regex_entities(f"máy serial {surface} còn bảo hành không") == [
        ("serial", surface.upper(), surface)
    ]


def test_emails_are_extracted_without_trailing_dot():
    assert regex_entities("mail mình là hoa.tran@gmail.com.") == [
        ("email", "hoa.tran@gmail.com", "hoa.tran@gmail.com")
    ]


@pytest.mark.parametrize(
    "surface",
    ["hôm qua", "hom qua", "hqua", "thứ 2", "chu nhat", "20/11", "15/11/2024", "yesterday", "Monday"],
)
def test_dates_are_extracted_with_or_without_diacritics(surface):
    assert regex_entities(f"mình đặt {surface} rồi") == [("date", surface, surface)]


def test_data_regex_named_after_an_entity_is_used():
    data = read_training_yaml(
        "nlu:\n- intent: w\n  examples: |\n    - máy [BV23A0045K](serial)\n"
        "- regex: serial\n  examples: |\n    - \\b[A-Z]{2}\\d{2}[A-Z]\\d{4}[A-Z]\\b\n"
        "- regex: not_an_entity\n  examples: |\n    - máy\n"
    )
    extractor = RegexEntityExtractor()
    extractor.train([], data)
    assert regex_entities("số máy bv23a0045k ạ", extractor) == [("serial", "BV23A0045K", "bv23a0045k")]


def test_overlapping_matches_keep_the_longest():
    assert regex_entities("đơn DH0901234567") == [("order_id", "DH0901234567", "DH0901234567")]


@pytest.mark.parametrize(
    ("text", "surface", "value"),
    [
        ("cho shop 5* nhé", "5*", "5"),
        ("đánh giá 5 sao", "5 sao", "5"),
        ("4 stars", "4 stars", "4"),
        ("năm sao", "năm sao", "5"),
        ("ba sao thôi", "ba sao", "3"),
        ("bon sao nha", "bon sao", "4"),
        ("chấm 2 điểm", "2 điểm", "2"),
        ("five", "five", "5"),
        ("one star, slow reply", "one star", "1"),
        ("⭐⭐⭐⭐", "⭐⭐⭐⭐", "4"),
        ("5 ⭐", "5 ⭐", "5"),
        ("4/5 nha", "4/5", "4"),
        ("4 out of 5", "4 out of 5", "4"),
        ("mình chấm 4", "4", "4"),
        ("3", "3", "3"),
    ],
)
def test_star_ratings_are_extracted(text, surface, value):
    assert found(RatingExtractor().extract(text), text) == [("rating", value, surface)]


@pytest.mark.parametrize(
    "text", ["năm nay mua 2 cái", "ba mình hỏi", "giao 5 ngày rồi", "3.5 sao", "đơn đặt hôm 9/10 chưa tới",
             "giao ngày 10/10 nhé", "cho mình 8/10 cái", "giá 800đ", "còn 8 dòng", "one of the ten"]
)
def test_numbers_that_are_not_ratings_are_ignored(text):
    assert RatingExtractor().extract(text) == []


@pytest.mark.parametrize(
    ("text", "surface", "value"),
    [
        ("9/10", "9/10", "5"),
        ("10 điểm", "10 điểm", "5"),
        ("cho 8 điểm", "8 điểm", "4"),
        ("chấm 7 điểm", "7 điểm", "4"),
        ("tu van nhiet tinh 10/10", "10/10", "5"),
        ("8/10 nha shop", "8/10", "4"),
        ("I'd give it 6 out of 10", "6 out of 10", "3"),
        ("chấm 9", "9", "5"),
        ("dịch vụ tạm, 5/10", "5/10", "3"),
        ("1/10", "1/10", "1"),
        ("cho 8đ", "8đ", "4"),
        ("9d nha shop", "9d", "5"),
        ("10đ", "10đ", "5"),
        ("ten out of ten", "ten out of ten", "5"),
        ("I'd say seven out of 10", "seven out of 10", "4"),
    ],
)
def test_scores_out_of_ten_map_onto_five_stars(text, surface, value):
    """ceil(score / 2): 9-10 -> 5, 7-8 -> 4, 5-6 -> 3, 3-4 -> 2, 0-2 -> 1."""
    assert found(RatingExtractor().extract(text), text) == [("rating", value, surface)]


def test_lookup_ignores_case_and_diacritics_and_returns_table_spelling():
    data = read_training_yaml("nlu:\n- lookup: product\n  examples: |\n    - nồi cơm điện\n    - nồi cơm\n")
    extractor = LookupEntityExtractor()
    extractor.train([], data)
    text = "NOI COM DIEN nhà mình hỏng"
    assert found(extractor.extract(text), text) == [("product", "nồi cơm điện", "NOI COM DIEN")]


def test_lookup_matches_whole_words_only():
    data = read_training_yaml("nlu:\n- lookup: product\n  examples: |\n    - ấm\n")
    extractor = LookupEntityExtractor()
    extractor.train([], data)
    assert extractor.extract("ấm áp lắm") != [] and extractor.extract("cấm") == []


def test_lookup_learns_annotated_product_values(tiny_data):
    extractor = LookupEntityExtractor()
    extractor.train(
        [], read_training_yaml("nlu:\n- intent: x\n  examples: |\n    - hỏng [máy xay](product) rồi\n")
    )
    text = "may xay của em kêu to"
    assert found(extractor.extract(text), text) == [("product", "máy xay", "may xay")]


def test_synonym_mapper_maps_variants_to_canonical_values_ignoring_diacritics(tiny_data):
    mapper = EntitySynonymMapper()
    mapper.train([], tiny_data)
    message = Message(
        "Nồi Cơm bị hỏng",
        {
            "entities": [
                {
                    "entity": "product",
                    "value": "Nồi Cơm",
                    "start": 0,
                    "end": 7,
                    "confidence": 1.0,
                    "extractor": "x",
                }
            ]
        },
    )
    mapper.process(message)
    assert message.data["entities"][0]["value"] == "nồi cơm điện"


def test_extractors_persist_and_load(tmp_path, tiny_data):
    for cls in (RegexEntityExtractor, LookupEntityExtractor, EntitySynonymMapper):
        component = cls()
        component.train([], tiny_data)
        component.persist(tmp_path)
        loaded = cls.load(tmp_path, component.config)
        message, again = Message("NOI COM bị hỏng, đơn DH123456"), Message("NOI COM bị hỏng, đơn DH123456")
        for target, instance in ((message, component), (again, loaded)):
            target.data["entities"] = []
            instance.process(target)
        assert message.data == again.data


def test_rating_out_of_five_wins_over_a_date_reading():
    message = Message("3/5")
    RegexEntityExtractor().process(message)
    RatingExtractor().process(message)
    assert found(message.data["entities"], "3/5") == [("rating", "3", "3/5")]


def test_bare_rating_with_a_particle_is_a_rating():
    assert found(RatingExtractor().extract("4 nha"), "4 nha") == [("rating", "4", "4")]


def test_day_month_date_after_ngay_is_one_date():
    assert regex_entities("đơn đặt ngày 20/11 ạ") == [("date", "20/11", "20/11")]

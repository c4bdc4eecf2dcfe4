"""Vietnamese-aware normalisation."""

from __future__ import annotations

import unicodedata

from nlu.normalization import TextNormalizer, fold, nfc, strip_diacritics


def test_fold_makes_accented_and_unaccented_spellings_equal():
    assert fold("Bảo Hành") == fold("bao hanh") == "bao hanh"


def test_fold_maps_d_with_stroke_to_d():
    assert fold("Đơn hàng đã giao") == "don hang da giao"


def test_fold_keeps_length_so_offsets_stay_valid():
    text = "Đơn ĐH123 ở Hà Nội ⭐"
    assert len(fold(text)) == len(text)


def test_strip_diacritics_keeps_case():
    assert strip_diacritics("Đơn Hàng") == "Don Hang"


def test_nfc_composes_decomposed_input():
    decomposed = unicodedata.normalize("NFD", "bảo hành")
    assert decomposed != "bảo hành" and nfc(decomposed) == "bảo hành"


def test_normalize_expands_typed_abbreviations():
    normalizer = TextNormalizer()
    assert normalizer.normalize("sp ko dc bh à") == "sản phẩm không được bảo hành à"
    assert normalizer.normalize("cho xin sđt với đh nha ad") == "cho xin số điện thoại với đơn hàng nha admin"
    assert normalizer.normalize("mn ơi j vs r") == "mọi người ơi gì với rồi"
    assert normalizer.normalize("hok đc khong") == "không được không"


def test_normalize_lowercases_and_squeezes_repeated_letters():
    assert TextNormalizer().normalize("Shop ơiiii CHÁN quáaaa") == "shop ơi chán quá"


def test_normalize_leaves_plain_english_alone():
    assert TextNormalizer().normalize("Where is my order 1000?") == "where is my order 1000?"


def test_normalize_without_abbreviations_only_folds_case():
    assert TextNormalizer(abbreviations={}).normalize("Sp ko") == "sp ko"


def test_views_give_accented_and_folded_text():
    assert TextNormalizer().views("Bảo hành SP") == {
        "normalized": "bảo hành sản phẩm",
        "folded": "bao hanh san pham",
    }


def test_english_words_that_look_like_unaccented_abbreviations_stay_english():
    assert TextNormalizer().normalize("a bit late for qa") == "a bit late for qa"

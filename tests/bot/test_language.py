"""Telling Vietnamese from English."""

from __future__ import annotations

import pytest

from bot.language import detect_language


@pytest.mark.parametrize("text", ["bảo hành bao lâu", "Đơn hàng của mình đâu rồi", "cho mình gặp nhân viên"])
def test_text_with_diacritics_is_vietnamese(text):
    assert detect_language(text) == "vi"


@pytest.mark.parametrize("text", ["bao hanh bao lau vay shop", "cho minh gap nhan vien", "don hang cua minh dau r"])
def test_vietnamese_typed_without_diacritics_is_vietnamese(text):
    assert detect_language(text, default="en") == "vi"


@pytest.mark.parametrize("text", ["How long is the warranty?", "I want to talk to a real person",
                                  "where is my order please"])
def test_english_is_english(text):
    assert detect_language(text) == "en"


@pytest.mark.parametrize("text", ["ok", "5", "DH100001", "👍"])
def test_text_without_evidence_keeps_the_default(text):
    assert detect_language(text, default="en") == "en"
    assert detect_language(text, default="vi") == "vi"

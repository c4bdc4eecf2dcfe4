"""The normaliser component."""

from __future__ import annotations

from nlu.components.normalizer import VietnameseNormalizer
from nlu.message import Message


def test_attaches_normalized_and_folded_views():
    message = Message("Sp BH ko?")
    VietnameseNormalizer().process(message)
    assert message.data == {"normalized": "sản phẩm bảo hành không?", "folded": "san pham bao hanh khong?"}


def test_extra_abbreviations_come_from_the_config():
    message = Message("hđbh đâu")
    VietnameseNormalizer({"extra_abbreviations": {"hđbh": "hóa đơn bảo hành"}}).process(message)
    assert message.data["normalized"] == "hóa đơn bảo hành đâu"


def test_expansion_can_be_switched_off():
    message = Message("sp ko")
    VietnameseNormalizer({"expand_abbreviations": False}).process(message)
    assert message.data["normalized"] == "sp ko"

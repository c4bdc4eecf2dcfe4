"""The channel-neutral message types: what every channel's text becomes before CareDesk stores it."""

from __future__ import annotations

import unicodedata

from connectors.base import Attachment, InboundMessage, clean_json, clean_text


def test_lone_surrogates_and_nul_become_the_replacement_character():
    assert clean_text("a\ud800b\udfffc\x00") == "a\ufffdb\ufffdc\ufffd"
    assert clean_text("plain ascii") == "plain ascii"
    assert clean_text("tab\x00") == "tab\ufffd"


def test_text_is_nfc_normalised():
    decomposed = unicodedata.normalize("NFD", "bảo hành")
    assert decomposed != "bảo hành"
    assert clean_text(decomposed) == "bảo hành"


def test_every_free_text_field_of_an_inbound_message_is_cleaned():
    message = InboundMessage(channel="telegram", sender_id="42\x00", external_id="e\ud800", text="hi \ud800",
                             payload="p\udc00", sender_name="Lan\ud83d", reply_token="r\x00",
                             attachments=(Attachment(kind="file", name="hóa đơn\ud800.pdf", url="u\x00"),),
                             metadata={"caption\ud800": ["c\ud800", {"k": "v\x00"}], "n": 1})
    assert message.text == "hi \ufffd" and message.payload == "p\ufffd" and message.sender_name == "Lan\ufffd"
    assert (message.sender_id, message.external_id, message.reply_token) == ("42\ufffd", "e\ufffd", "r\ufffd")
    assert message.attachments[0].name == "hóa đơn\ufffd.pdf" and message.attachments[0].url == "u\ufffd"
    assert message.metadata == {"caption\ufffd": ["c\ufffd", {"k": "v\ufffd"}], "n": 1}
    message.model_dump_json().encode("utf-8")  # storable anywhere


def test_clean_json_keeps_what_is_not_text():
    assert clean_json({"a": [1, 2.5, None, True], "b": {"c": "ok"}}) == {"a": [1, 2.5, None, True], "b": {"c": "ok"}}

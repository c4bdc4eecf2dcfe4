"""The inbox's UI strings: both languages have the same keys, and every key the scripts and the page
ask for by name exists (a missing one would show as its raw key)."""

from __future__ import annotations

import json
import re

from tests.conftest import ROOT

STATIC = ROOT / "helpdesk" / "static" / "inbox"
TEMPLATES = ROOT / "helpdesk" / "templates" / "inbox"
#: t("key") and t("key", {...}) with a literal key in the scripts; data-i18n*="key" and t("key") in the pages
_SCRIPT_KEY = re.compile(r"""\bt\(\s*["']([a-z_]+(?:\.[a-z_0-9]+)+)["']""")
_PAGE_KEY = re.compile(r"""(?:data-i18n(?:-[a-z-]+)?="|\bt\(\s*["'])([a-z_]+(?:\.[a-z_0-9]+)+)["']""")
ATTACHMENT_KINDS = ("image", "sticker", "video", "audio", "file", "location", "contact")


def strings(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_vietnamese_and_english_have_the_same_keys():
    assert set(strings("vi")) == set(strings("en"))


def test_every_key_the_inbox_asks_for_exists():
    wanted = set()
    for script in STATIC.glob("*.js"):
        wanted |= set(_SCRIPT_KEY.findall(script.read_text(encoding="utf-8")))
    for page in TEMPLATES.glob("*.html"):
        wanted |= {key for key in _PAGE_KEY.findall(page.read_text(encoding="utf-8")) if "~" not in key}
    wanted |= {f"attachment.kind.{kind}" for kind in ATTACHMENT_KINDS}  # built as `attachment.kind.${kind}`
    assert {"composer.attach", "details.attachments", "upload.failed", "attachment.failed"} <= wanted
    for lang in ("vi", "en"):
        assert sorted(wanted - set(strings(lang))) == [], lang

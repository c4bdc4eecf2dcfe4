"""The admin pages' strings: Vietnamese and English have the same keys, and every key the pages ask
for exists (the keys written out, and the families built from a value: roles, priorities, weekdays,
channels, placeholders, pages)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from connectors import CONNECTORS
from helpdesk.admin.api import SECTIONS
from helpdesk.canned.placeholders import PLACEHOLDERS

ROOT = Path(__file__).resolve().parents[3]
STATIC = ROOT / "helpdesk" / "static" / "admin"
TEMPLATES = ROOT / "helpdesk" / "templates" / "admin"


def strings(lang: str) -> dict[str, str]:
    return json.loads((STATIC / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))


def test_vietnamese_and_english_have_the_same_keys():
    assert set(strings("vi")) == set(strings("en"))


def test_every_key_the_admin_pages_ask_for_exists():
    known = set(strings("vi"))
    asked = set()
    for path in [*STATIC.glob("*.js"), *TEMPLATES.glob("*.html")]:
        asked |= set(re.findall(r"""["'](admin\.[a-z_]+(?:\.[a-z_]+)+)["']""", path.read_text(encoding="utf-8")))
    families = {
        "admin.title": SECTIONS, "admin.intro": SECTIONS, "admin.nav": SECTIONS,
        "admin.role": ("agent", "supervisor", "admin"), "admin.priority": ("urgent", "high", "normal", "low"),
        "admin.weekday": ("mon", "tue", "wed", "thu", "fri", "sat", "sun"), "admin.channel": tuple(CONNECTORS),
        "admin.canned.placeholder": tuple(PLACEHOLDERS), "admin.canned.sample": tuple(PLACEHOLDERS),
        "admin.channels.credentials": ("_ok", "_rejected", "_unchecked", "_none"),
    }
    for prefix, values in families.items():
        joiner = "" if prefix.endswith("credentials") else "."
        asked |= {f"{prefix}{joiner}{value}" for value in values}
    assert sorted(asked - known) == []

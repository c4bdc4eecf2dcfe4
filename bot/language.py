"""Telling Vietnamese from English in short customer messages."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\b[^\W\d_]+\b", re.UNICODE)  # whole words only: "DH100001" is no word

# Letters that exist only in Vietnamese (đ) and combining marks Vietnamese uses for tones and vowels.
_VIETNAMESE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323", "\u0302", "\u0306", "\u031b"}

# Frequent Vietnamese words as people type them without diacritics, and frequent English words.
_VI_PLAIN = frozenset(
    "a anh ban bao bh bi cho chi chua co con cua da dang de den dh don duoc dc di em gi giup gio hang hay "
    "hoi hom khong ko k la lam lai len luc mua mk minh mot nao nay nha nhe nhu nhung oi qua roi sao "
    "shop sp sdt tai thi tien toi tra tu vay vs voi xin ship nhan vien hu hong bep noi com dien kiem tra "
    "giao ngay mai bay gio bn mn j r ad ak a ah uh uk vang da dung thoi".split()
)
_EN = frozenset(
    "the a an is are was were be i you my me we our your it this that to of for in on at and or but with "
    "please can could would will how what when where why which who hello hi hey thanks thank order "
    "warranty delivery return refund product help want need do does did not no yes get have has from "
    "talk person human agent real speak long still where's i'm it's don't".split()
)


def has_vietnamese_marks(text: str) -> bool:
    """Whether the text carries Vietnamese diacritics or the letter đ."""
    lowered = text.lower()
    if "đ" in lowered:
        return True
    decomposed = unicodedata.normalize("NFD", lowered)
    return any(char in _VIETNAMESE_MARKS for char in decomposed)


def detect_language(text: str, default: str = "vi") -> str:
    """``"vi"`` or ``"en"``; ``default`` when the text gives no evidence (e.g. "ok", "5")."""
    if has_vietnamese_marks(text):
        return "vi"
    words = [word.lower() for word in _WORD.findall(text)]
    if not words:
        return default
    english = sum(word in _EN for word in words)
    vietnamese = sum(word in _VI_PLAIN for word in words)
    if english > vietnamese and english >= max(1, len(words) // 3):
        return "en"
    if vietnamese > english:
        return "vi"
    return default

"""Vietnamese-aware text normalisation: NFC, case folding, diacritic stripping, chat abbreviations."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Typed chat abbreviations (lower case, matched as whole tokens, accented or not) -> expansion.
# Ambiguous ones are left out (e.g. "hd": hóa đơn / hướng dẫn / hợp đồng).
DEFAULT_ABBREVIATIONS: dict[str, str] = {
    "ko": "không",
    "k": "không",
    "kh": "không",
    "hok": "không",
    "hong": "không",
    "hông": "không",
    "khum": "không",
    "khong": "không",
    "hk": "không",
    "tks": "cảm ơn",
    "thks": "cảm ơn",
    "hem": "không",
    "khg": "không",
    "kô": "không",
    "k0": "không",
    "dc": "được",
    "đc": "được",
    "dk": "được",
    "đk": "được",
    "duoc": "được",
    "sp": "sản phẩm",
    "bh": "bảo hành",
    "sđt": "số điện thoại",
    "sdt": "số điện thoại",
    "đt": "điện thoại",
    "dt": "điện thoại",
    "đh": "đơn hàng",
    "dh": "đơn hàng",
    "ad": "admin",
    "mn": "mọi người",
    "mng": "mọi người",
    "j": "gì",
    "gi": "gì",
    "vs": "với",
    "r": "rồi",
    "rùi": "rồi",
    "roài": "rồi",
    "cx": "cũng",
    "cg": "cũng",
    "ns": "nói",
    "tn": "tin nhắn",
    "nt": "nhắn tin",
    "ib": "nhắn tin",
    "inbox": "nhắn tin",
    "bn": "bao nhiêu",
    "bnh": "bao nhiêu",
    "ntn": "như thế nào",
    "trc": "trước",
    "ng": "người",
    "nv": "nhân viên",
    "tl": "trả lời",
    "z": "vậy",
    "v": "vậy",
    "zậy": "vậy",
    "dzậy": "vậy",
    "thik": "thích",
    "nhìu": "nhiều",
    "iu": "yêu",
    "bik": "biết",
    "bít": "biết",
    "bjk": "biết",
    "wa": "quá",
    "qá": "quá",
    "hnay": "hôm nay",
    "hqua": "hôm qua",
    "mk": "mình",
    "mik": "mình",
    "mjk": "mình",
    "oke": "ok",
    "okie": "ok",
    "okela": "ok",
    "uk": "ừ",
    "uh": "ừ",
    "ừm": "ừ",
    "lquan": "liên quan",
    "ktra": "kiểm tra",
    "tgian": "thời gian",
    "tg": "thời gian",
    "hđ": "hóa đơn",
    "sn": "số seri",
    "đchi": "địa chỉ",
    "dchi": "địa chỉ",
    "tk": "tài khoản",
}

WORD_PATTERN = re.compile(r"\w+", re.UNICODE)
REPEATED_LETTERS = re.compile(r"([^\W\d_])\1{2,}", re.UNICODE)


@lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    lowered = char.lower()
    if len(lowered) != 1:
        lowered = char
    if lowered == "đ":
        return "d"
    decomposed = unicodedata.normalize("NFD", lowered)
    base = "".join(c for c in decomposed if not unicodedata.combining(c))
    return base if len(base) == 1 else lowered


def nfc(text: str) -> str:
    """Return ``text`` in Unicode NFC form."""
    return unicodedata.normalize("NFC", text)


class _FoldTable(dict):
    """``str.translate``'s table for ``fold``: each character's folded form, worked out the first time
    the character is met (translating in C is about ten times faster than joining folded characters)."""

    def __missing__(self, codepoint: int) -> str:
        folded = self[codepoint] = _fold_char(chr(codepoint))
        return folded


_FOLD_TABLE = _FoldTable()


def fold(text: str) -> str:
    """Lower-case and strip diacritics (đ -> d) char by char, keeping the length and offsets."""
    return text.translate(_FOLD_TABLE)


def strip_diacritics(text: str) -> str:
    """Return ``text`` without Vietnamese (or any Latin) diacritics, đ mapped to d; case kept."""
    return "".join(_fold_char(c).upper() if c.isupper() else _fold_char(c) for c in text)


def squeeze_repeated_letters(text: str) -> str:
    """Collapse runs of three or more of the same letter, ignoring diacritics ("quáaaa" -> "quá")."""
    runs = list(REPEATED_LETTERS.finditer(fold(text)))
    if not runs:
        return text
    pieces, position = [], 0
    for run in runs:
        pieces.append(text[position : run.start() + 1])
        position = run.end()
    pieces.append(text[position:])
    return "".join(pieces)


class TextNormalizer:
    """Produces the normalised views of a message used by the featurisers."""

    def __init__(self, abbreviations: dict[str, str] | None = None, squeeze_repeats: bool = True) -> None:
        source = DEFAULT_ABBREVIATIONS if abbreviations is None else abbreviations
        self.abbreviations = {nfc(key).lower(): value for key, value in source.items()}
        self.squeeze_repeats = squeeze_repeats

    def normalize(self, text: str) -> str:
        """Return NFC, lower-cased text with repeated letters squeezed and abbreviations expanded."""
        text = nfc(text).lower()
        if self.squeeze_repeats:
            text = squeeze_repeated_letters(text)
        return WORD_PATTERN.sub(self._expand, text)

    def _expand(self, match: re.Match) -> str:
        word = match.group(0)
        return self.abbreviations.get(word, word)

    def views(self, text: str) -> dict[str, str]:
        """Return the ``normalized`` (accented) and ``folded`` (diacritic-free) views of ``text``."""
        normalized = self.normalize(text)
        return {"normalized": normalized, "folded": fold(normalized)}

"""What a search box's text asks for (folded words, a phone number, an order code) and the snippet that
shows where a text matched. Pure functions: no database."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from functools import cached_property

from nlu.normalization import fold, nfc

#: longest query accepted (a longer one is refused with 422, not cut)
MAX_QUERY_LENGTH = 200
#: words of a query that are searched for; more add nothing but cost
MAX_WORDS = 8
#: letters and digits, the tokens both databases' full-text indexes cut text into
_WORD = re.compile(r"[^\W_]+")
_PHONE_LIKE = re.compile(r"^[+\d][\d\s.\-()]*$")
_CODE_LIKE = re.compile(r"^[A-Za-z]{0,6}\d{2,}[A-Za-z\d\-]*$")


@dataclass(frozen=True)
class SearchTerms:
    """A query read for searching: its folded words (the last one matched as a prefix, as the agent is
    still typing it), and the phone numbers and order code it may be."""

    text: str
    words: tuple[str, ...]
    phone_prefixes: tuple[str, ...]
    code_prefix: str | None

    def fts5_match(self) -> str:
        """An FTS5 MATCH expression: every word, the last as a prefix (words are letters and digits
        only, so quoting them is enough)."""
        quoted = [f'"{word}"' for word in self.words]
        quoted[-1] += "*"
        return " ".join(quoted)

    @cached_property
    def word_patterns(self) -> tuple[re.Pattern[str], ...]:
        """Each word at the start of a word of a folded text, whole except the last (a prefix, whose
        whole word is taken, so that it is highlighted whole)."""
        last = len(self.words) - 1
        return tuple(re.compile(rf"(?<![^\W_]){re.escape(word)}" + (r"[^\W_]*" if i == last else r"(?![^\W_])"))
                     for i, word in enumerate(self.words))

    @cached_property
    def phrase(self) -> str:
        """The folded words joined by single spaces."""
        return " ".join(self.words)

    def tsquery(self) -> str:
        """A PostgreSQL ``to_tsquery('simple', …)`` text with the same meaning as ``fts5_match``."""
        return " & ".join([*self.words[:-1], f"{self.words[-1]}:*"])


def read_terms(query: str) -> SearchTerms | None:
    """The query's terms, or None when it holds nothing to search for (no letter or digit)."""
    text = nfc(query).strip()
    words = tuple(_WORD.findall(fold(text)))[:MAX_WORDS]
    if not words:
        return None
    return SearchTerms(text=text, words=words, phone_prefixes=_phone_prefixes(text),
                       code_prefix=text.upper() if _CODE_LIKE.match(text) else None)


def _phone_prefixes(text: str) -> tuple[str, ...]:
    """Stored phones are ten digits starting with 0 (``normalise_phone``): what a typed number can be
    the start of, whether typed with +84 or 84, with a leading 0, without it, or with spaces."""
    if not _PHONE_LIKE.match(text):
        return ()
    digits = "".join(char for char in text if char.isdigit())
    if len(digits) < 3:
        return ()
    prefixes = {digits}
    if digits.startswith("84") and len(digits) > 2:
        prefixes.add("0" + digits[2:])
    if not digits.startswith("0"):
        prefixes.add("0" + digits)
    return tuple(sorted(prefixes))


def prefix_upper_bound(prefix: str) -> str:
    """The least string above every string that starts with ``prefix`` (for an index range scan)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def match_spans(text: str, terms: SearchTerms) -> list[tuple[int, int]]:
    """Where the query's words occur in ``text`` (NFC), accents and case ignored, as sorted spans;
    each word matches at the start of a word of the text, whole except the last (a prefix)."""
    folded = fold(text)
    spans = [match.span() for pattern in terms.word_patterns for match in pattern.finditer(folded)]
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, stop in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(stop, merged[-1][1]))
        else:
            merged.append((start, stop))
    return merged


def relevance(text: str, terms: SearchTerms) -> int:
    """How closely ``text`` matches: 3 the query as typed (accents included, case ignored),
    2 the whole query as a phrase without accents, 1 its words anywhere, 0 not all of them."""
    lowered = text.lower()
    if terms.text.lower() in lowered:
        return 3
    folded = fold(text)
    if terms.phrase in " ".join(_WORD.findall(folded)):
        return 2
    return 1 if all(pattern.search(folded) for pattern in terms.word_patterns) else 0


def snippet_parts(text: str, terms: SearchTerms, width: int = 140) -> list[dict[str, object]]:
    """A window of ``text`` around its first match, as parts ``{"text", "match"}`` for a client to
    render as plain text (no markup to inject)."""
    text = " ".join(nfc(text or "").split())
    spans = match_spans(text, terms)
    start = 0
    if spans and len(text) > width:
        start = max(0, spans[0][0] - width // 3)
        while start > 0 and not text[start - 1].isspace():
            start -= 1
    stop = min(len(text), start + width)
    while stop < len(text) and not text[stop].isspace() and stop - start < width + 20:
        stop += 1
    parts: list[dict[str, object]] = []
    position = start
    for span_start, span_stop in spans:
        if span_stop <= start or span_start >= stop:
            continue
        span_start, span_stop = max(span_start, start), min(span_stop, stop)
        if span_start > position:
            parts.append({"text": text[position:span_start], "match": False})
        parts.append({"text": text[span_start:span_stop], "match": True})
        position = span_stop
    if position < stop:
        parts.append({"text": text[position:stop], "match": False})
    if parts and start > 0:
        parts[0]["text"] = "…" + str(parts[0]["text"])
    if parts and stop < len(text):
        parts[-1]["text"] = str(parts[-1]["text"]) + "…"
    return parts


def snippet_html(parts: list[dict[str, object]]) -> str:
    """The parts as escaped HTML with the matches in ``<mark>``: safe to insert as markup."""
    return "".join(f"<mark>{html.escape(str(p['text']))}</mark>" if p["match"] else html.escape(str(p["text"]))
                   for p in parts)

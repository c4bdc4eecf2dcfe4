"""Rule-based entity extractors: regexes (built-in and from the data), lookup tables, star ratings,
and the synonym mapper."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nlu.components.base import Component, register_component
from nlu.message import Message
from nlu.normalization import fold
from nlu.training_data import TrainingData

_SEP = r"[\s.\-]?"
PHONE_PATTERN = re.compile(
    r"(?<![\w+])(?:(?:\(\s*\+?84\s*\)|\+84|0084|84)" + _SEP + r"\(?0?\)?|0)"
    r"(?P<body>[35789](?:" + _SEP + r"\d){8}|2(?:" + _SEP + r"\d){9})(?![\w])"
)
ORDER_ID_PATTERN = re.compile(r"(?<![\w#])#?(?:DH|ĐH)[\s:.\-_]?\d{4,12}(?!\w)", re.IGNORECASE)
# A bare order number right after "đơn (hàng)", "mã đơn", "order (number)" (matched on the folded view).
ORDER_NUMBER_PATTERN = re.compile(
    r"(?<!\w)(?:ma\s+)?(?:don(?:\s+hang)?|order(?:\s+(?:number|no\.?|id|code))?)"
    r"(?:\s+(?:so|ma|la|is|#))*\s*[:#]?\s*(?P<code>\d{6,12})(?![\w])"
)
SERIAL_PATTERN = re.compile(
    r"(?<![\w-])SN[\s#:.\-]?(?=[A-Z0-9]*\d)[A-Z0-9]{3,16}(?:-[A-Z0-9]{2,12})*(?![\w-])", re.IGNORECASE
)
EMAIL_PATTERN = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w])"
)
_WEEKDAY = (
    r"(?:thu\s*(?:[2-7]|hai|ba|tu|nam|sau|bay)|chu\s+nhat"
    r"|monday|tuesday|wednesday|thursday|friday|saturday|sunday)"
)
# Dates are matched on the diacritic-free, lower-cased view (same offsets as the text). Like the
# project's training data, only calendar dates, weekdays and "yesterday"-like past days are dates;
# "today", "this week" and similar are left to the dialogue.
DATE_PATTERN = re.compile(
    r"(?<![\w/.])(?:\d{1,2}[/.\-]\d{1,2}[/.\-]\d{2,4}|\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2})(?![\w/])"
    r"|(?<!\w)(?:ngay\s+\d{1,2}(?![\d/.\-])(?:\s*thang\s*\d{1,2}(?:\s*nam\s*\d{4})?)?"
    r"|hom\s+(?:qua|kia)|hqua|bua\s+(?:qua|truoc)|\d{1,3}\s+(?:ngay|tuan|thang)\s+truoc"
    rf"|{_WEEKDAY}|yesterday|\d{{1,3}}\s+(?:days|weeks|months)\s+ago)(?!\w)"
)


def normalize_phone(surface: str) -> str:
    """Return a Vietnamese phone number as ten or eleven digits starting with 0."""
    digits = re.sub(r"\D", "", surface)
    if digits.startswith("0084"):
        digits = digits[4:]
    elif digits.startswith("84") and len(digits) >= 11:
        digits = digits[2:]
    digits = digits.lstrip("0")
    return "0" + digits


def normalize_code(prefix: str) -> Callable[[str], str]:
    """Return a normaliser upper-casing a code and dropping separators after ``prefix``."""

    def normalize(surface: str) -> str:
        """Return the code upper-cased, separators dropped, prefixed."""
        cleaned = re.sub(r"[\s#:.\-_]", "", surface).upper().replace("Đ", "D")
        return cleaned if cleaned.startswith(prefix) else prefix + cleaned

    return normalize


def normalize_serial(surface: str) -> str:
    """Return a serial number upper-cased, without spaces."""
    return re.sub(r"\s+", "", surface).upper()


VALUE_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "phone": normalize_phone,
    "order_id": normalize_code("DH"),
    "serial": normalize_serial,
}


def _order_id_normalizer(surface: str) -> str:
    if ORDER_ID_PATTERN.fullmatch(surface.strip()):
        return VALUE_NORMALIZERS["order_id"](surface)
    return surface


def _serial_normalizer(surface: str) -> str:
    return normalize_serial(surface)


def _phone_normalizer(surface: str) -> str:
    return normalize_phone(surface) if PHONE_PATTERN.fullmatch(surface.strip()) else surface


SAFE_NORMALIZERS: dict[str, Callable[[str], str]] = {
    "phone": _phone_normalizer,
    "order_id": _order_id_normalizer,
    "serial": _serial_normalizer,
}

BUILTIN_PATTERNS: dict[str, tuple[re.Pattern, bool]] = {  # entity -> (pattern, match on folded view)
    "order_id": (ORDER_ID_PATTERN, False),
    "phone": (PHONE_PATTERN, False),
    "serial": (SERIAL_PATTERN, False),
    "email": (EMAIL_PATTERN, False),
    "date": (DATE_PATTERN, True),
}


def entity_dict(
    entity: str, value: str, start: int, end: int, extractor: str, confidence: float = 1.0
) -> dict[str, Any]:
    """Return an entity in Rasa's parse JSON shape."""
    return {
        "entity": entity,
        "value": value,
        "start": start,
        "end": end,
        "confidence": confidence,
        "extractor": extractor,
    }


def remove_overlaps(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the longest of overlapping entities (earlier candidates win ties); sort by start."""
    kept: list[dict[str, Any]] = []
    for candidate in sorted(enumerate(candidates), key=lambda p: (-(p[1]["end"] - p[1]["start"]), p[0])):
        entity = candidate[1]
        if all(entity["end"] <= k["start"] or entity["start"] >= k["end"] for k in kept):
            kept.append(entity)
    return sorted(kept, key=lambda e: e["start"])


def _append_entities(message: Message, entities: list[dict[str, Any]]) -> None:
    if entities:
        message.data.setdefault("entities", []).extend(entities)
        message.data["entities"].sort(key=lambda e: e["start"])
    else:
        message.data.setdefault("entities", [])


@register_component
class RegexEntityExtractor(Component):
    """Extracts entities with built-in patterns (order codes, phones, serials, emails, dates) and
    with the training data's ``regex`` items named after an entity (case-insensitive)."""

    name = "RegexEntityExtractor"
    reads_processed_training_messages = False

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {
            "builtins": ["order_id", "phone", "serial", "email", "date"],
            "use_data_regexes": True,
            "normalize_values": True,
        }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.data_patterns: list[tuple[str, str]] = []
        self._compiled: list[tuple[str, re.Pattern]] = []

    def train(self, examples: Sequence[Message], data: TrainingData | None = None) -> None:
        """Collect the data's regex items whose name is an entity (annotated or built-in)."""
        if data is None or not self.config["use_data_regexes"]:
            return
        entity_names = set(data.entity_types) | set(BUILTIN_PATTERNS) | {"rating", "product"}
        self.data_patterns = [(r.name, p) for r in data.regexes if r.name in entity_names for p in r.patterns]
        self._compile()

    def _compile(self) -> None:
        self._compiled = [(name, re.compile(pattern, re.IGNORECASE)) for name, pattern in self.data_patterns]

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Return the entities found in ``text``."""
        folded = None
        candidates: list[dict[str, Any]] = []
        normalize = self.config["normalize_values"]
        for entity in self.config["builtins"]:
            pattern, on_folded = BUILTIN_PATTERNS[entity]
            if on_folded and folded is None:
                folded = fold(text)
            for match in pattern.finditer(folded if on_folded else text):
                surface = text[match.start() : match.end()]
                value = (
                    VALUE_NORMALIZERS[entity](surface)
                    if normalize and entity in VALUE_NORMALIZERS
                    else surface
                )
                candidates.append(entity_dict(entity, value, match.start(), match.end(), self.name))
        if "order_id" in self.config["builtins"]:
            folded = folded if folded is not None else fold(text)
            for match in ORDER_NUMBER_PATTERN.finditer(folded):
                start, end = match.span("code")
                if not PHONE_PATTERN.fullmatch(text[start:end]):
                    candidates.append(entity_dict("order_id", text[start:end], start, end, self.name))
        for entity, pattern in self._compiled:
            for match in pattern.finditer(text):
                if match.end() == match.start():
                    continue
                surface = text[match.start() : match.end()]
                value = (
                    SAFE_NORMALIZERS[entity](surface) if normalize and entity in SAFE_NORMALIZERS else surface
                )
                candidates.append(entity_dict(entity, value, match.start(), match.end(), self.name))
        return remove_overlaps(candidates)

    def process(self, message: Message) -> None:
        """Append the regex entities to ``entities``."""
        _append_entities(message, self.extract(message.text))

    def persist(self, path: Path) -> None:
        """Save the data's patterns."""
        (path / "patterns.json").write_text(
            json.dumps(self.data_patterns, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> RegexEntityExtractor:
        """Rebuild from the saved patterns."""
        extractor = cls(config)
        extractor.data_patterns = [
            tuple(p) for p in json.loads((path / "patterns.json").read_text(encoding="utf-8"))
        ]
        extractor._compile()
        return extractor


@register_component
class LookupEntityExtractor(Component):
    """Finds lookup-table values as whole words, ignoring case and diacritics; the value is the
    table's spelling of the element."""

    name = "LookupEntityExtractor"
    reads_processed_training_messages = False

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration (``annotated_entities``: entities whose annotated
        surface texts are added to the lookup table of the same name)."""
        return {"annotated_entities": ["product"]}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.tables: dict[str, list[str]] = {}
        self._compiled: list[tuple[str, re.Pattern, dict[str, str]]] = []

    def train(self, examples: Sequence[Message], data: TrainingData | None = None) -> None:
        """Keep the data's lookup tables, plus annotated values of ``annotated_entities``."""
        self.tables = {t.name: list(t.elements) for t in (data.lookups if data else [])}
        wanted = set(self.config["annotated_entities"])
        for example in data.examples if data else []:
            for annotation in example.entities:
                if annotation.entity in wanted:
                    surface = example.text[annotation.start : annotation.end]
                    table = self.tables.setdefault(annotation.entity, [])
                    if surface not in table:
                        table.append(surface)
        self._compile()

    def _compile(self) -> None:
        self._compiled = []
        for name, elements in self.tables.items():
            spelling = {}
            for element in elements:
                key = re.sub(r"\s+", " ", fold(element.strip()))
                if key:
                    spelling.setdefault(key, element.strip())
            if not spelling:
                continue
            alternatives = "|".join(
                re.escape(k).replace(r"\ ", r"\s+") for k in sorted(spelling, key=len, reverse=True)
            )
            self._compiled.append((name, re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)"), spelling))

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Return the lookup entities found in ``text``."""
        folded = fold(text)
        candidates = []
        for name, pattern, spelling in self._compiled:
            for match in pattern.finditer(folded):
                key = re.sub(r"\s+", " ", match.group(0))
                candidates.append(
                    entity_dict(
                        name,
                        spelling.get(key, text[match.start() : match.end()]),
                        match.start(),
                        match.end(),
                        self.name,
                    )
                )
        return remove_overlaps(candidates)

    def process(self, message: Message) -> None:
        """Append the lookup entities to ``entities``."""
        _append_entities(message, self.extract(message.text))

    def persist(self, path: Path) -> None:
        """Save the lookup tables."""
        (path / "lookups.json").write_text(json.dumps(self.tables, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> LookupEntityExtractor:
        """Rebuild from the saved lookup tables."""
        extractor = cls(config)
        extractor.tables = json.loads((path / "lookups.json").read_text(encoding="utf-8"))
        extractor._compile()
        return extractor


NUMBER_WORDS = {
    "1": "1",
    "2": "2",
    "3": "3",
    "4": "4",
    "5": "5",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "mot": "1",
    "hai": "2",
    "ba": "3",
    "bon": "4",
    "tu": "4",
    "nam": "5",
}
_NUMBER = r"(?P<number>[1-5]|one|two|three|four|five|mot|hai|ba|bon|tu|nam)"
_STAR = r"(?:⭐|★|🌟)\ufe0f?"
# (pattern, span group): the entity covers that group of the match (0 = the whole match).
RATING_PATTERNS: list[tuple[re.Pattern, int | str]] = [
    # 5*, 5s, 5 sao, 4 stars, 3 điểm, năm sao, five stars, 4/5, 4 out of 5, 4 trên 5, 5 ⭐
    (
        re.compile(
            rf"(?<![\w.,/]){_NUMBER}(?:[.,]0)?\s*(?:\*|s(?!\w)|sao(?!\w)|stars?(?!\w)|diem(?!\w)"
            rf"|/\s*5(?!\d)|(?:out\s+of|tren)\s+5(?!\d)|{_STAR})"
        ),
        0,
    ),
    # rate 4, rated it 5, đánh giá 5, chấm 4, vote 3: the entity is the number
    (
        re.compile(
            rf"(?<!\w)(?:rated?(?:\s+(?:it|you|this|us))?|rating|danh\s+gia|cham|vote|give)\s*:?\s*{_NUMBER}"
            r"(?![\w.,/])(?!\s*(?:ngay|lan|gio|phut|thang|days?|times?|hours?|minutes?))"
        ),
        "number",
    ),
    # a message that is only a rating, maybe with a particle: "5", "five", "năm", "4 nha"
    (
        re.compile(rf"^\s*{_NUMBER}\s*(?:nha|nhe|nhen|nhaa|a|ah|thoi|luon|di|ok|please|pls)?\s*[.!]*\s*$"),
        "number",
    ),
]
STARS_PATTERN = re.compile(r"(?:[⭐★🌟]\ufe0f?\s*){1,5}")

# Scores out of ten ("9/10", "10 điểm", "cho 8 điểm", "8 out of 10", "chấm 9") are mapped onto the 1-5
# scale as ceil(score / 2), at least 1: 9-10 -> 5, 7-8 -> 4, 5-6 -> 3, 3-4 -> 2, 0-2 -> 1. "N điểm"
# reads as stars when N is 1-5 (as "3 điểm" always has) and as a score out of ten when N is 6-10;
# "N/10" is a score only in a message that talks about a rating or is nothing but the score, so a
# date such as "đặt hôm 9/10" stays a date. All matched on the folded, lower-cased text.
_SCORE = r"(?P<score>10|[0-9])"
_RATING_CUE = re.compile(
    r"(?<!\w)(?:diem|cham|danh\s+gia|rate|rated|rating|score|vote|cho\s+shop|cho\s+ban|sao|stars?|hai\s+long"
    r"|tot|tuyet|on\s+ap|te|good|great|excellent|ok|service|dich\s+vu|tu\s+van|ho\s+tro|support|phuc\s+vu)(?!\w)"
)
#: scores out of ten written in English words ("ten out of ten")
_SCORE_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10}
_DATE_BEFORE = re.compile(r"(?:ngay|hom|thang|tu|den|truoc|sau|on|since|until|by|from|to|dat|giao|nhan)\s*$")
SCORE_PATTERNS: list[tuple[re.Pattern, int | str, bool]] = [  # (pattern, span group, needs a rating cue)
    (re.compile(rf"(?<![\w.,/]){_SCORE}\s*/\s*10(?![\d/])"), 0, True),
    (re.compile(rf"(?<![\w.,/]){_SCORE}\s*(?:out\s+of|tren|on)\s+10(?!\d)"), 0, False),
    # "8đ" folds to "8d": buyers shorten điểm so (money is written "8k", "800đ", never one digit and đ)
    (re.compile(r"(?<![\w.,/])(?P<score>10|[6-9])\s*(?:diem|d|points?)(?!\w)"), 0, False),
    (re.compile(rf"(?<!\w)(?P<word>{'|'.join(_SCORE_WORDS)})\s+(?:out\s+of|on)\s+(?:ten|10)(?!\w)"), 0, False),
    (
        re.compile(
            r"(?<!\w)(?:rated?(?:\s+(?:it|you|this|us))?|rating|danh\s+gia|cham|vote|score)\s*:?\s*"
            r"(?P<score>10|[6-9])(?![\w.,/])(?!\s*(?:ngay|lan|gio|phut|thang|days?|times?|hours?|minutes?))"
        ),
        "score",
        False,
    ),
]


def stars_from_score(score: int) -> int:
    """A score out of ten as stars out of five: ceil(score / 2), at least 1."""
    return max(1, min(5, (score + 1) // 2))


def _score_ratings(folded: str, entity: str, extractor: str) -> list[dict[str, Any]]:
    candidates = []
    only_the_score = re.fullmatch(r"\s*(?:10|[0-9])\s*/\s*10(?:\s*(?:nha|nhe|a|ah|nhen|thoi|luon|shop|ad|ban|oi|nhe|!|\.))*\s*", folded)
    for pattern, group, needs_cue in SCORE_PATTERNS:
        for match in pattern.finditer(folded):
            if needs_cue and not only_the_score:
                if _DATE_BEFORE.search(folded[: match.start()]) or not _RATING_CUE.search(folded):
                    continue
            start, end = match.span(group)
            score = match.groupdict().get("score")
            stars = stars_from_score(int(score) if score is not None else _SCORE_WORDS[match.group("word")])
            candidates.append(entity_dict(entity, str(stars), start, end, extractor))
    return candidates


@register_component
class RatingExtractor(Component):
    """Extracts star ratings 1-5 ("5*", "5 sao", "4 stars", "năm sao", "⭐⭐⭐⭐", a bare "5"), and
    scores out of ten mapped onto them ("9/10" and "10 điểm" are 5, "cho 8 điểm" is 4: see
    ``stars_from_score``)."""

    name = "RatingExtractor"
    reads_processed_training_messages = False

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {"entity": "rating", "overrides": ["date"]}

    def extract(self, text: str) -> list[dict[str, Any]]:
        """Return the rating entities found in ``text``."""
        folded = fold(text)
        entity = self.config["entity"]
        candidates = []
        for pattern, group in RATING_PATTERNS:
            for match in pattern.finditer(folded):
                start, end = match.span(group)
                candidates.append(
                    entity_dict(entity, NUMBER_WORDS[match.group("number")], start, end, self.name)
                )
        candidates += _score_ratings(folded, entity, self.name)
        for match in STARS_PATTERN.finditer(text):
            surface = match.group(0).rstrip()
            count = sum(1 for c in surface if c in "⭐★🌟")
            candidates.append(
                entity_dict(entity, str(count), match.start(), match.start() + len(surface), self.name)
            )
        return remove_overlaps(candidates)

    def process(self, message: Message) -> None:
        """Append the rating entities, dropping overlapping ``overrides`` entities (e.g. "3/5" as a date)."""
        ratings = self.extract(message.text)
        overridden = set(self.config["overrides"])
        if ratings and overridden:
            message.data["entities"] = [
                e
                for e in message.data.get("entities", [])
                if e["entity"] not in overridden
                or all(e["end"] <= r["start"] or e["start"] >= r["end"] for r in ratings)
            ]
        _append_entities(message, ratings)


@register_component
class EntitySynonymMapper(Component):
    """Maps entity values to canonical values (synonym items and annotations with a value);
    matching ignores case and diacritics. A mapped entity lists the mapper in ``processors``, as
    Rasa's does."""

    name = "EntitySynonymMapper"
    reads_processed_training_messages = False

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.synonyms: dict[str, str] = {}

    def train(self, examples: Sequence[Message], data: TrainingData | None = None) -> None:
        """Collect variant -> canonical pairs."""
        self.synonyms = {}
        for variant, canonical in (data.synonym_map() if data else {}).items():
            self.synonyms[self._key(variant)] = canonical

    @staticmethod
    def _key(value: str) -> str:
        return re.sub(r"\s+", " ", fold(value.strip()))

    def process(self, message: Message) -> None:
        """Replace entity values that are known variants."""
        for entity in message.data.get("entities", []):
            value = entity.get("value")
            if isinstance(value, str):
                canonical = self.synonyms.get(self._key(value))
                if canonical is not None and canonical != value:
                    entity["value"] = canonical
                    entity.setdefault("processors", []).append(self.name)

    def persist(self, path: Path) -> None:
        """Save the synonym table."""
        (path / "synonyms.json").write_text(json.dumps(self.synonyms, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> EntitySynonymMapper:
        """Rebuild from the saved synonym table."""
        mapper = cls(config)
        mapper.synonyms = json.loads((path / "synonyms.json").read_text(encoding="utf-8"))
        return mapper

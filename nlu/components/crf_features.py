"""The CRF entity extractor's token features: tokens with their offsets, each token's own and its
neighbours' attributes, the data's regex and lookup hits, and BIO/BILOU tags to and from spans.

Kept apart from the extractor (nlu/components/crf.py) so the attribute set can be read, and
changed, in one place."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from nlu.normalization import fold
from nlu.training_data import TrainingData

TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
OUTSIDE = "O"
KINDS = ("entity", "role", "group")

Token = tuple[str, int, int]  # text, start, end


def tokenize(text: str) -> list[Token]:
    """Return the word and punctuation tokens of ``text`` with their character offsets."""
    return [(m.group(), m.start(), m.end()) for m in TOKEN_PATTERN.finditer(text)]


def word_shape(token: str) -> str:
    """Return the token's shape with runs collapsed ("Đà" -> "Xx", "DH123" -> "Xd", "4.5" -> "d")."""
    shape: list[str] = []
    for char in token:
        kind = "d" if char.isdigit() else "X" if char.isupper() else "x" if char.isalpha() else char
        if not shape or shape[-1] != kind:
            shape.append(kind)
    return "".join(shape)


@lru_cache(maxsize=65536)
def token_features(token: str, affixes: bool = False) -> tuple[tuple[str, ...], str]:
    """Return the features of a token on its own, and its folded form (used by the neighbours);
    ``affixes`` adds 2- and 4-letter prefixes and a 4-letter suffix to the 3-letter ones."""
    lower = token.lower()
    folded = fold(token)
    features = [f"l={lower}", f"f={folded}", f"s={word_shape(token)}"]
    if len(folded) > 3:
        features += [f"p3={folded[:3]}", f"x3={folded[-3:]}", f"x2={folded[-2:]}"]
        if affixes:
            features += [f"p2={folded[:2]}"]
            if len(folded) > 4:
                features += [f"p4={folded[:4]}", f"x4={folded[-4:]}"]
    if token.isdigit():
        features.append(f"d{min(len(token), 5)}")
    elif any(c.isdigit() for c in token):
        features.append("hasdigit")
    if token[:1].isupper():
        features.append("title")
    return tuple(features), folded


def sentence_features(
    tokens: Sequence[Token], hits: Sequence[Iterable[str]], extra: Sequence[str] = (), window: int = 2,
    affixes: bool = False, conjoin: str | None = None, hit_window: int = 0, wide_pairs: bool = False,
) -> list[list[str]]:
    """Return the CRF attributes of each token: its own features, the neighbours' folded syllables
    (±``window``, at least 2) and syllable pairs, the regex/lookup hits covering it and ``extra``
    (sentence-wide); ``conjoin`` (the intent) is also paired with each token's folded form, so the
    same word can be tagged differently under different intents; ``hit_window`` adds the hits of
    the tokens that far either side ("the word after a city"); ``wide_pairs`` adds the pairs of the
    two syllables before and of the two after."""
    own = [token_features(text, affixes) for text, _, _ in tokens]
    folded = [f for _, f in own]
    count = len(tokens)
    sequence = []
    for i in range(count):
        attributes = ["b", *own[i][0], *hits[i], *extra]
        previous = folded[i - 1] if i > 0 else "<s>"
        following = folded[i + 1] if i + 1 < count else "</s>"
        attributes += [
            f"-1={previous}",
            f"+1={following}",
            f"-2={folded[i - 2] if i > 1 else '<s>'}",
            f"+2={folded[i + 2] if i + 2 < count else '</s>'}",
            f"-1|0={previous}|{folded[i]}",
            f"0|+1={folded[i]}|{following}",
        ]
        if wide_pairs:
            attributes.append(f"-2|-1={folded[i - 2] if i > 1 else '<s>'}|{previous}")
            attributes.append(f"+1|+2={following}|{folded[i + 2] if i + 2 < count else '</s>'}")
        if conjoin is not None:
            attributes.append(f"i|0={conjoin}|{folded[i]}")
        for distance in range(3, window + 1):
            attributes.append(f"-{distance}={folded[i - distance] if i >= distance else '<s>'}")
            attributes.append(f"+{distance}={folded[i + distance] if i + distance < count else '</s>'}")
        for distance in range(1, hit_window + 1):
            if i >= distance:
                attributes += [f"-{distance}{hit}" for hit in hits[i - distance]]
            if i + distance < count:
                attributes += [f"+{distance}{hit}" for hit in hits[i + distance]]
        if i > 0:
            attributes.append(f"-1{own[i - 1][0][2]}")
        if i + 1 < count:
            attributes.append(f"+1{own[i + 1][0][2]}")
        sequence.append(attributes)
    return sequence


# A role or group depends on where an entity stands, not on which value it is ("từ Huế" is a
# departure, "về Huế" a destination): their CRFs do not see the token's own identity.
IDENTITY_PREFIXES = ("l=", "f=", "i|0=", "p2=", "p3=", "p4=", "x2=", "x3=", "x4=", "-1|0=", "0|+1=")


def relation_features(sequence: Sequence[list[str]], entity_tags: Sequence[str]) -> list[list[str]]:
    """Return the attributes of the role and group CRFs: the context features, the entity tag and
    how many entities of that type started so far (the first product with the first quantity)."""
    started: Counter[str] = Counter()
    rows = []
    for attributes, tag in zip(sequence, entity_tags):
        prefix, _, label = tag.partition("-")
        if prefix in ("B", "U"):
            started[label] += 1
        context = [a for a in attributes if not a.startswith(IDENTITY_PREFIXES)]
        rows.append([*context, f"ent={tag}", f"nth={min(started[label], 4) if label else 0}"])
    return rows


def bilou_tags(tokens: Sequence[Token], spans: Sequence[tuple[int, int, str]]) -> list[str]:
    """Return a BILOU tag per token for ``(start, end, label)`` spans (a token inside a span, even
    partly, belongs to it)."""
    tags = [OUTSIDE] * len(tokens)
    ends = [t_end for _, _, t_end in tokens]
    for start, end, label in spans:
        inside = []
        for i in range(bisect_right(ends, start), len(tokens)):  # the first token ending after start
            if tokens[i][1] >= end:
                break
            inside.append(i)
        if len(inside) == 1:
            tags[inside[0]] = f"U-{label}"
        elif inside:
            tags[inside[0]] = f"B-{label}"
            for i in inside[1:-1]:
                tags[i] = f"I-{label}"
            tags[inside[-1]] = f"L-{label}"
    return tags


def bio_tags(tags: Sequence[str]) -> list[str]:
    """Return BILOU tags as BIO (a unit or last token becomes B or I): half the tags per entity type,
    which on HWU64 tagged better (entity F1 0.771 -> 0.776) and trained faster."""
    return [f"B{t[1:]}" if t[0] == "U" else f"I{t[1:]}" if t[0] == "L" else t for t in tags]


def decode_bilou(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Return ``(first token, last token, label)`` for each entity in a tag sequence, forgiving
    sequences the CRF rarely produces (an I or L without B starts an entity; a label change ends one)."""
    entities: list[tuple[int, int, str]] = []
    open_at: int | None = None
    open_label = ""
    for i, tag in enumerate(tags):
        prefix, _, label = tag.partition("-")
        if open_at is not None and (prefix in ("O", "B", "U") or label != open_label):
            entities.append((open_at, i - 1, open_label))
            open_at = None
        if prefix == "U":
            entities.append((i, i, label))
        elif prefix in ("B", "I") and open_at is None:
            open_at, open_label = i, label
        elif prefix == "L":
            entities.append((i if open_at is None else open_at, i, label))
            open_at = None
    if open_at is not None:
        entities.append((open_at, len(tags) - 1, open_label))
    return entities


class FeatureTables:
    """The data's regex and lookup tables, marking the tokens they cover as CRF attributes.

    Lookup elements are matched as sequences of folded tokens (a dictionary probe per position and
    length), which stays fast with thousands of elements where one big regex would not. Besides the
    data's ``lookup`` items, the entity values annotated at least ``min_seen`` times become a table
    per entity ("seen:<entity>"): a value met once only does not fire while training, as an unseen
    value would not when parsing, so the CRF learns how far to trust the table.
    """

    def __init__(
        self,
        regexes: dict[str, list[str]],
        lookups: dict[str, list[str]],
        counts: dict[str, int] | None = None,
    ) -> None:
        self.regexes = regexes
        self.lookups = lookups
        self.counts = counts or {}  # folded token -> how many training examples have it
        self._regex = [
            (name, re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE))
            for name, patterns in regexes.items()
            if patterns
        ]
        self._phrases: dict[tuple[str, ...], list[str]] = {}
        for name, elements in lookups.items():
            for element in elements:
                key = tuple(fold(token) for token, _, _ in tokenize(element))
                if key and name not in self._phrases.setdefault(key, []):
                    self._phrases[key].append(name)
        # every leading part of an element: the probe at a position stops at the first miss
        self._prefixes = {key[:length] for key in self._phrases for length in range(1, len(key) + 1)}

    @classmethod
    def from_data(cls, data: TrainingData, min_seen: int = 2) -> FeatureTables:
        """Collect the training data's regex and lookup tables and its often annotated values."""
        lookups = {t.name: list(t.elements) for t in data.lookups}
        seen: Counter[tuple[str, str]] = Counter(
            (e.entity, " ".join(fold(example.text[e.start : e.end]).split()))
            for example in data.examples
            for e in example.entities
        )
        for (entity, value), count in sorted(seen.items()):
            if count >= min_seen and value:
                lookups.setdefault(f"seen:{entity}", []).append(value)
        counts: Counter[str] = Counter()
        for example in data.examples:
            counts.update({token_features(token)[1] for token, _, _ in tokenize(example.text)})
        return cls({r.name: list(r.patterns) for r in data.regexes}, lookups, dict(counts))

    def rare_marks(self, tokens: Sequence[Token], marks: list[list[str]], at_most: int) -> None:
        """Add to ``marks`` "rare" for each token found in at most ``at_most`` training examples,
        and "-1rare"/"+1rare" to its neighbours. A name the model never saw ("email mahmoud") has
        no identity feature to go by; a word met once in training is as rare as an unseen one
        when parsing, so the CRF learns what a rare word in that place usually is."""
        rare = [self.counts.get(token_features(token)[1], 0) <= at_most for token, _, _ in tokens]
        for i, is_rare in enumerate(rare):
            if is_rare:
                marks[i].append("rare")
                if i > 0:
                    marks[i - 1].append("+1rare")
                if i + 1 < len(rare):
                    marks[i + 1].append("-1rare")

    def hits(self, text: str, tokens: Sequence[Token]) -> list[list[str]]:
        """Return, per token, the names of the regexes and lookup tables matching over it."""
        marks: list[list[str]] = [[] for _ in tokens]
        if not tokens:
            return marks
        for name, pattern in self._regex:
            for match in pattern.finditer(text):
                first = True
                for i, (_, t_start, t_end) in enumerate(tokens):
                    if t_start < match.end() and t_end > match.start():
                        marks[i].append(f"re:{name}" if first else f"re:{name}>")
                        first = False
        if self._phrases:
            folded = [token_features(token)[1] for token, _, _ in tokens]
            for i in range(len(tokens)):
                for length in range(1, len(tokens) - i + 1):
                    key = tuple(folded[i : i + length])
                    if key not in self._prefixes:
                        break
                    names = self._phrases.get(key)
                    if names:
                        for name in names:
                            marks[i].append(f"lk:{name}")
                            marks[i + 1 : i + length] = [
                                [*m, f"lk:{name}>"] for m in marks[i + 1 : i + length]
                            ]
        return marks

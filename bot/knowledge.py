"""The shop's FAQ, read from data/faq/*.yml, and picking the best answer for a question."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from nlu import yaml_io

_WORDS = re.compile(r"\w+")


class KnowledgeError(Exception):
    """An FAQ file is malformed."""


@dataclass(frozen=True)
class FaqLink:
    """A link shown with an answer."""

    title: str
    url: str


@dataclass(frozen=True)
class FaqEntry:
    """One answer, attached to an intent, with keywords that pick it among its siblings."""

    id: str
    intent: str
    answer: dict[str, str]
    keywords: tuple[str, ...] = ()
    links: tuple[FaqLink, ...] = ()


def fold(text: str) -> str:
    """Lower-case text without diacritics (đ becomes d), for forgiving keyword matching."""
    decomposed = unicodedata.normalize("NFD", text.lower().replace("đ", "d"))
    return "".join(char for char in decomposed if unicodedata.category(char) != "Mn")


@dataclass
class Knowledge:
    """All FAQ entries, grouped by intent."""

    by_intent: dict[str, list[FaqEntry]] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> Knowledge:
        """Read every ``*.yml`` file of the FAQ folder."""
        knowledge = cls()
        for path in sorted(directory.glob("*.yml")):
            try:
                document = yaml_io.safe_load(path.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise KnowledgeError(f"{path}: invalid YAML: {exc}") from exc
            for index, item in enumerate(document.get("faqs", [])):
                try:
                    entry = FaqEntry(
                        id=str(item["id"]),
                        intent=str(item["intent"]),
                        answer={str(k): str(v) for k, v in item["answer"].items()},
                        keywords=tuple(str(k) for k in item.get("keywords", []) or []),
                        links=tuple(FaqLink(str(link["title"]), str(link["url"]))
                                    for link in item.get("links", []) or []),
                    )
                except (KeyError, TypeError, AttributeError) as exc:
                    raise KnowledgeError(f"{path}: faq #{index + 1} is missing {exc}") from exc
                knowledge.by_intent.setdefault(entry.intent, []).append(entry)
        return knowledge

    def answer_for(self, intent: str, text: str, locale: str = "vi") -> FaqEntry | None:
        """The entry of ``intent`` that best matches ``text``: keywords first, then words shared with
        the answer in the customer's language; the first entry (the general answer) on a tie."""
        entries = self.by_intent.get(intent)
        if not entries:
            return None
        folded = fold(text)
        words = {word for word in _WORDS.findall(folded) if len(word) >= 4}

        def score(entry: FaqEntry) -> tuple[int, int]:
            keyword_hits = sum(fold(k) in folded for k in entry.keywords)
            answer = fold(entry.answer.get(locale) or next(iter(entry.answer.values()), ""))
            shared = len(words & {stem for word in _WORDS.findall(answer) for stem in (word, word.rstrip("s"))})
            return keyword_hits, shared

        return max(entries, key=score)

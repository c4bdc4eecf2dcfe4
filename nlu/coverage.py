"""Word coverage of a message by its predicted intent: an out-of-scope signal that needs no encoder.

An in-scope message mostly uses words its intent's training examples use; an out-of-scope one
brings words the training data never had, or had only in other intents ("where do black holes come
from" shares "where ... come from" with ``where_are_you_from`` but not "black holes"). Confidence
alone misses that when the shared words decide the classifier's vote.

``IntentCoverage`` counts, per word, how many training examples of each intent contain it, and
scores a message (as word tokens) against one intent with three features, each weighted by the
words' inverse document frequency (an unseen word gets the largest weight, that of a word in no
example):

- ``unknown``: the weight share of words no training example contains;
- ``covered``: the weight share of words that occur in the intent's own examples;
- ``association``: the weighted mean over words of P(intent | word), the share of the examples
  containing the word that belong to the intent (0 for unseen words).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from nlu.normalization import WORD_PATTERN

COVERAGE_FEATURES = ("unknown", "covered", "association")


def message_words(text: str) -> list[str]:
    """Return the word tokens of a (normalised) message view."""
    return WORD_PATTERN.findall(text)


class IntentCoverage:
    """Per-word intent counts from training examples, and coverage features of new messages."""

    def __init__(self, n_intents: int) -> None:
        self.n_intents = n_intents
        self.n_examples = 0
        # word -> (document frequency, {intent index: examples of that intent containing the word})
        self.words: dict[str, tuple[int, dict[int, int]]] = {}
        self._unknown_weight = 1.0

    @classmethod
    def fit(
        cls, token_lists: Iterable[Sequence[str]], intents: Iterable[int], n_intents: int
    ) -> IntentCoverage:
        """Count the words of training examples (token lists) with their intent indices."""
        coverage = cls(n_intents)
        counts: dict[str, dict[int, int]] = {}
        for tokens, intent in zip(token_lists, intents):
            coverage.n_examples += 1
            for word in set(tokens):
                per_intent = counts.setdefault(word, {})
                per_intent[intent] = per_intent.get(intent, 0) + 1
        coverage.words = {word: (sum(per.values()), per) for word, per in counts.items()}
        coverage._set_unknown_weight()
        return coverage

    def _set_unknown_weight(self) -> None:
        self._unknown_weight = self._idf(0)

    def _idf(self, document_frequency: int) -> float:
        """Smoothed inverse document frequency (as the featuriser computes it)."""
        return math.log((1.0 + self.n_examples) / (1.0 + document_frequency)) + 1.0

    def features(self, tokens: Sequence[str], intent: int) -> tuple[float, float, float]:
        """Return ``(unknown, covered, association)`` of one message's tokens against ``intent``;
        a message without words counts as wholly unknown."""
        if not tokens:
            return 1.0, 0.0, 0.0
        total = unknown = covered = association = 0.0
        for word in tokens:
            entry = self.words.get(word)
            if entry is None:
                total += self._unknown_weight
                unknown += self._unknown_weight
                continue
            frequency, per_intent = entry
            weight = self._idf(frequency)
            total += weight
            in_intent = per_intent.get(intent, 0)
            if in_intent:
                covered += weight
                association += weight * in_intent / frequency
        return unknown / total, covered / total, association / total

    def feature_rows(self, token_lists: Sequence[Sequence[str]], intents: Sequence[int]) -> np.ndarray:
        """Return the features of many messages, one row each (``COVERAGE_FEATURES`` order)."""
        rows = np.zeros((len(token_lists), len(COVERAGE_FEATURES)), dtype=np.float64)
        for row, (tokens, intent) in enumerate(zip(token_lists, intents)):
            rows[row] = self.features(tokens, int(intent))
        return rows

    def state(self) -> dict[str, Any]:
        """Return a JSON-able copy (intent indices as strings, as JSON keys must be)."""
        return {
            "n_intents": self.n_intents,
            "n_examples": self.n_examples,
            "words": {word: {str(k): v for k, v in per.items()} for word, (_, per) in self.words.items()},
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> IntentCoverage:
        """Rebuild from ``state()``."""
        coverage = cls(int(state["n_intents"]))
        coverage.n_examples = int(state["n_examples"])
        for word, per in state["words"].items():
            counts = {int(k): int(v) for k, v in per.items()}
            coverage.words[word] = (sum(counts.values()), counts)
        coverage._set_unknown_weight()
        return coverage

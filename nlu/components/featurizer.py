"""Sparse n-gram TF-IDF featuriser over the normalised views of a message."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from nlu.components.base import Component, register_component
from nlu.message import Message
from nlu.normalization import WORD_PATTERN


def word_ngrams(text: str, low: int, high: int) -> list[str]:
    """Return the word n-grams of ``text`` for n in [low, high]."""
    tokens = WORD_PATTERN.findall(text)
    grams: list[str] = []
    if low <= 1 <= high:
        grams.extend(tokens)
    for n in range(max(low, 2), high + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """Return character n-grams inside space-padded words (like scikit-learn's char_wb)."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if n > length:
                break
            grams.extend(padded[i : i + n] for i in range(length - n + 1))
    return grams


ANALYZERS = {"word": word_ngrams, "char_wb": char_wb_ngrams}
WORD_CACHE_SIZE = 100_000


class NgramBlock:
    """One vocabulary + IDF table for one (view, analyzer, n-gram range)."""

    def __init__(
        self,
        view: str,
        analyzer: str,
        ngram_range: Sequence[int],
        weight: float = 1.0,
        min_df: int = 1,
        sublinear_tf: bool = True,
    ) -> None:
        self.view = view
        self.analyzer = analyzer
        self.low, self.high = int(ngram_range[0]), int(ngram_range[1])
        self.weight = float(weight)
        self.min_df = int(min_df)
        self.sublinear_tf = sublinear_tf
        self.vocabulary: dict[str, int] = {}
        self.idf = np.zeros(0, dtype=np.float32)
        if analyzer not in ANALYZERS:
            raise ValueError(f"unknown analyzer {analyzer!r} (use one of {', '.join(ANALYZERS)})")
        self._analyze = ANALYZERS[analyzer]
        self._word_cache: dict[str, list[int]] = {}  # char_wb: word -> indices of its known n-grams

    def grams(self, message: Message, word_grams: dict[str, list[str]] | None = None) -> list[str]:
        """Return the n-grams of the message's view; char_wb n-grams are made word by word, and
        with ``word_grams`` (a cache the caller keeps for one pass over many messages) each
        distinct word's only once (the same n-grams in the same order as the whole text's)."""
        text = message.data.get(self.view, message.text)
        if self.analyzer != "char_wb" or word_grams is None:
            return self._analyze(text, self.low, self.high)
        grams: list[str] = []
        for word in text.split():
            known = word_grams.get(word)
            if known is None:
                known = word_grams[word] = char_wb_ngrams(word, self.low, self.high)
            grams.extend(known)
        return grams

    def fit(self, gram_lists: list[list[str]]) -> None:
        """Build the vocabulary and smoothed IDF from training n-grams."""
        document_frequency: Counter[str] = Counter()
        for grams in gram_lists:
            document_frequency.update(set(grams))
        kept = sorted(g for g, df in document_frequency.items() if df >= self.min_df)
        self.vocabulary = {g: i for i, g in enumerate(kept)}
        n_docs = len(gram_lists)
        df = np.array([document_frequency[g] for g in kept], dtype=np.float64)
        self.idf = (np.log((1.0 + n_docs) / (1.0 + df)) + 1.0).astype(np.float32)

    def _known_indices(self, text: str) -> list[int]:
        """Return the vocabulary indices of the text's n-grams (with repeats)."""
        vocabulary = self.vocabulary
        if self.analyzer != "char_wb":
            return [i for i in map(vocabulary.get, self._analyze(text, self.low, self.high)) if i is not None]
        cache = self._word_cache
        indices: list[int] = []
        for word in text.split():
            known = cache.get(word)
            if known is None:
                grams = char_wb_ngrams(word, self.low, self.high)
                known = [i for i in map(vocabulary.get, grams) if i is not None]
                if len(cache) >= WORD_CACHE_SIZE:
                    cache.clear()
                cache[word] = known
            indices.extend(known)
        return indices

    def vectorize_text(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, values) of the L2-normalised, weighted TF-IDF vector of ``text``."""
        return self._weigh(self._known_indices(text))

    def vectorize(self, grams: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return (indices, values) of the L2-normalised, weighted TF-IDF vector of n-grams."""
        return self._weigh([i for i in map(self.vocabulary.get, grams) if i is not None])

    def _weigh(self, known: list[int]) -> tuple[np.ndarray, np.ndarray]:
        counts: dict[int, int] = {}
        for index in known:
            counts[index] = counts.get(index, 0) + 1
        if not counts:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.float32)
        indices = np.fromiter(counts.keys(), dtype=np.int32, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float32, count=len(counts))
        if self.sublinear_tf:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf[indices]
        values *= self.weight / math.sqrt(float(values @ values))
        return indices, values

    def state(self) -> dict[str, Any]:
        """Return the JSON-able configuration of this block."""
        return {
            "view": self.view,
            "analyzer": self.analyzer,
            "ngram_range": [self.low, self.high],
            "weight": self.weight,
            "min_df": self.min_df,
            "sublinear_tf": self.sublinear_tf,
        }


@register_component
class NgramFeaturizer(Component):
    """TF-IDF over word and char_wb n-grams of the normalised views (each block L2-normalised,
    then weighted)."""

    name = "NgramFeaturizer"

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {
            "sublinear_tf": True,
            # Chosen by cross-validation on the training data: the diacritic-free view carries most of
            # the signal (customers type with and without accents); accented words help a little.
            "blocks": [
                {"view": "folded", "analyzer": "word", "ngram_range": [1, 2]},
                {"view": "folded", "analyzer": "char_wb", "ngram_range": [1, 5]},
                {"view": "normalized", "analyzer": "word", "ngram_range": [1, 2], "weight": 0.5},
            ],
        }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.blocks = [
            NgramBlock(
                b["view"],
                b["analyzer"],
                b["ngram_range"],
                b.get("weight", 1.0),
                b.get("min_df", 1),
                b.get("sublinear_tf", self.config["sublinear_tf"]),
            )
            for b in self.config["blocks"]
        ]
        self._offsets: list[int] = []
        self.dimension = 0
        self.similarity_range = (0, 0)

    def _compute_offsets(self) -> None:
        self._offsets, total = [], 0
        for block in self.blocks:
            self._offsets.append(total)
            total += len(block.vocabulary)
        self.dimension = total
        # The first word-n-gram block: the classifier compares messages to training examples in it
        # (nearest-example similarity, an out-of-scope signal); char n-grams make everything alike.
        words = [i for i, block in enumerate(self.blocks) if block.analyzer == "word"]
        if words:
            first = words[0]
            start = self._offsets[first]
            self.similarity_range = (start, start + len(self.blocks[first].vocabulary))

    def train(self, examples: Sequence[Message], data: Any = None) -> None:
        """Build each block's vocabulary and IDF from the training messages."""
        for block in self.blocks:
            word_grams: dict[str, list[str]] = {}  # training words repeat: their n-grams made once
            block.fit([block.grams(m, word_grams) for m in examples])
            block._word_cache.clear()
        self._compute_offsets()

    def features(self, message: Message) -> tuple[np.ndarray, np.ndarray]:
        """Return the (indices, values) sparse feature vector of a message."""
        index_parts, value_parts = [], []
        for block, offset in zip(self.blocks, self._offsets):
            indices, values = block.vectorize_text(message.data.get(block.view, message.text))
            index_parts.append(indices + offset)
            value_parts.append(values)
        return np.concatenate(index_parts), np.concatenate(value_parts)

    def process(self, message: Message) -> None:
        """Attach ``sparse_features`` (indices, values) and ``feature_dim``."""
        message.data["sparse_features"] = self.features(message)
        message.data["feature_dim"] = self.dimension
        message.data["similarity_range"] = self.similarity_range

    def persist(self, path: Path) -> None:
        """Save vocabularies (as ordered n-gram lists) and IDF tables."""
        vocabularies = [sorted(b.vocabulary, key=b.vocabulary.__getitem__) for b in self.blocks]
        (path / "vocabularies.json").write_text(
            json.dumps(vocabularies, ensure_ascii=False), encoding="utf-8"
        )
        np.savez(path / "idf.npz", *[b.idf for b in self.blocks])

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> NgramFeaturizer:
        """Rebuild from saved vocabularies and IDF tables."""
        featurizer = cls(config)
        vocabularies = json.loads((path / "vocabularies.json").read_text(encoding="utf-8"))
        with np.load(path / "idf.npz", allow_pickle=False) as arrays:
            idfs = [arrays[f"arr_{i}"] for i in range(len(featurizer.blocks))]
        for block, vocabulary, idf in zip(featurizer.blocks, vocabularies, idfs):
            block.vocabulary = dict(zip(vocabulary, range(len(vocabulary))))
            block.idf = idf.astype(np.float32)
        featurizer._compute_offsets()
        return featurizer


def feature_matrix(messages: Sequence[Message]) -> sp.csr_matrix:
    """Stack the messages' ``sparse_features`` into a CSR matrix."""
    dimension = messages[0].data["feature_dim"] if messages else 0
    parts = [m.data["sparse_features"] for m in messages]
    lengths = np.fromiter((len(p[0]) for p in parts), dtype=np.int64, count=len(parts))
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int32)
    values = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
    matrix = sp.csr_matrix((values, indices, indptr), shape=(len(parts), dimension))
    matrix.sort_indices()
    return matrix

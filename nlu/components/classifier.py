"""Linear intent classifiers over the sparse features, with softmax-calibrated confidences."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu.calibration import (
    LEGACY_OUT_OF_SCOPE_FEATURES,
    OUT_OF_SCOPE_FEATURES,
    confidence_features,
    expected_calibration_error,
    fit_temperature,
    folds_with_held_out_intents,
    nearest_similarity,
    row_normalized,
    softmax,
)
from nlu.components.base import Component, register_component
from nlu.components.featurizer import feature_matrix
from nlu.coverage import COVERAGE_FEATURES, IntentCoverage, message_words
from nlu.message import Message


softmax_rows = softmax  # the name other modules import


@register_component
class LinearIntentClassifier(Component):
    """One-vs-rest linear SVM (or logistic regression); confidence = softmax(temperature * score),
    with the temperature fitted on a held-out share of the training data (``temperature: auto``)."""

    name = "LinearIntentClassifier"

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {
            "model": "svm",
            # "ovr": one binary SVM per intent; "crammer_singer": one joint multi-class SVM (higher
            # CLINC150/HWU64/BANKING77 accuracy, lower SNIPS, 2-10x the fit time; see
            # bench/nlu_bench.py --clinc).
            "multi_class": "ovr",
            "C": 1.0,
            "class_weight": None,
            "temperature": "auto",
            "calibration_folds": 3,
            # Share of the intents each cross-validation fold leaves out entirely: their examples
            # in that fold stand in for out-of-scope messages when the out-of-scope scorer is fit.
            "out_of_scope_intent_share": 0.15,
            # The message view whose words the out-of-scope scorer checks against the predicted
            # intent's training words (nlu.coverage); null leaves coverage out of the score.
            "coverage_view": "folded",
            # What the out-of-scope score reads (nlu.calibration.OUT_OF_SCOPE_FEATURES). Chosen on
            # CLINC150's validation split: the top raw score and the coverage by the predicted
            # intent's words; margin and similarity made left-out intents look unlike real
            # out-of-scope messages (see bench/nlu_bench.py --clinc).
            "out_of_scope_features": ["top_score", "covered"],
            "calibration_split": None,  # accepted from older configs; calibration is cross-validated
            "prior_temperature": 5.0,
            "prior_strength": 20.0,
            "max_iter": 2000,
            "random_state": 0,
        }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.classes: list[str] = []
        self.weights_t = np.zeros((0, 0), dtype=np.float32)  # (n_features, n_classes)
        self.bias = np.zeros(0, dtype=np.float32)
        configured = self.config["temperature"]
        self.temperature = 1.0 if configured == "auto" else float(configured)
        self.calibration: dict[str, Any] = {}
        self.oos_model: dict[str, Any] | None = None
        self._oos_weights: np.ndarray | None = None
        self._oos_bias = 0.0
        self.similarity_range = (0, 0)
        self.similarity_examples = None  # training examples' unit word-n-gram vectors (CSR)
        self._similarity_t = None  # the same, transposed (feature -> examples), for one message
        self.coverage: IntentCoverage | None = None  # training words per intent (out-of-scope score)
        self.oos_features: tuple[str, ...] = tuple(self.config["out_of_scope_features"])
        unknown = sorted(set(self.oos_features) - set(OUT_OF_SCOPE_FEATURES))
        if unknown or not self.oos_features:
            problem = f"unknown feature {unknown[0]!r}" if unknown else "no features"
            raise ValueError(
                f"out_of_scope_features: {problem} (choose from {', '.join(OUT_OF_SCOPE_FEATURES)})"
            )
        if self.config["multi_class"] not in ("ovr", "crammer_singer"):
            raise ValueError(
                f"multi_class: unknown value {self.config['multi_class']!r} (use 'ovr' or 'crammer_singer')"
            )
        reads_coverage = sorted(set(self.oos_features) & set(COVERAGE_FEATURES))
        if reads_coverage and not self.config["coverage_view"]:
            raise ValueError(f"out_of_scope_features: {reads_coverage[0]!r} needs a coverage_view")

    def _estimator(self):
        model = self.config["model"]
        if model == "svm":
            from sklearn.svm import LinearSVC

            return LinearSVC(
                multi_class=self.config["multi_class"],
                C=self.config["C"],
                class_weight=self.config["class_weight"],
                max_iter=self.config["max_iter"],
                random_state=self.config["random_state"],
            )
        if model == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(
                C=self.config["C"],
                class_weight=self.config["class_weight"],
                max_iter=self.config["max_iter"],
                random_state=self.config["random_state"],
            )
        raise ValueError(f"unknown model {model!r} for {self.name} (use 'svm' or 'logreg')")

    def _fit(self, matrix, labels: list[str], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Fit one model; return (weights transposed, bias) with columns in ``classes`` order."""
        present = sorted(set(labels))
        dimension = matrix.shape[1]
        weights_t = np.zeros((dimension, len(classes)), dtype=np.float32)
        bias = np.full(len(classes), -1e3, dtype=np.float32)  # classes missing from this fit never win
        if len(present) < 2:
            bias[[classes.index(c) for c in present]] = 1.0
            return weights_t, bias
        estimator = self._estimator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(matrix, labels)
        coef = np.asarray(estimator.coef_, dtype=np.float32)
        intercept = np.asarray(estimator.intercept_, dtype=np.float32)
        if coef.shape[0] == 1:  # binary problem: scikit-learn keeps one row for the second class
            coef = np.vstack([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]], dtype=np.float32) / 2
        columns = [classes.index(c) for c in estimator.classes_]
        weights_t[:, columns] = coef.T
        bias[columns] = intercept
        return weights_t, bias

    @property
    def _needs_similarity(self) -> bool:
        return "similarity" in self.oos_features

    @property
    def _needs_coverage(self) -> bool:
        return bool(self.config["coverage_view"]) and bool(set(self.oos_features) & set(COVERAGE_FEATURES))

    def _tokens(self, message: Message) -> list[str]:
        """Return the words of the message view the coverage features read."""
        view = self.config["coverage_view"]
        return message_words(message.data.get(view, message.text)) if view else []

    def _held_out_scores(
        self, matrix, words, labels: list[str], tokens: list[list[str]]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """Score every training example with a model that never saw it (cross-validation).

        Returns ``(scores, out_of_scope, similarity, coverage)``: raw class scores per example,
        whether the example's intent was also left out of that model (a pseudo out-of-scope
        message; see ``folds_with_held_out_intents``), its similarity to the nearest example that
        model saw, and its coverage features against the predicted intent, counted on the words of
        the examples that model saw (None when the score reads no coverage feature)."""
        label_array = np.array(labels)
        n_folds = max(2, int(self.config["calibration_folds"]))
        fold, held_out = folds_with_held_out_intents(
            labels, n_folds, float(self.config["out_of_scope_intent_share"]), self.config["random_state"]
        )
        scores = np.zeros((len(labels), len(self.classes)), dtype=np.float64)
        similarity = np.zeros(len(labels), dtype=np.float64)
        coverage = np.zeros((len(labels), len(COVERAGE_FEATURES))) if self._needs_coverage else None
        position = {name: i for i, name in enumerate(self.classes)}
        intent_index = np.array([position[label] for label in labels])
        for k in range(n_folds):
            trained_on = (fold != k) & (held_out != k)
            scored = fold == k
            if not scored.any():
                continue
            weights_t, bias = self._fit(matrix[trained_on], list(label_array[trained_on]), self.classes)
            scores[scored] = np.asarray(matrix[scored] @ weights_t + bias, dtype=np.float64)
            if self._needs_similarity:
                similarity[scored] = nearest_similarity(words[scored], words[trained_on])
            if coverage is not None:
                seen = IntentCoverage.fit(
                    (tokens[i] for i in np.flatnonzero(trained_on)),
                    intent_index[trained_on],
                    len(self.classes),
                )
                rows = np.flatnonzero(scored)
                coverage[rows] = seen.feature_rows([tokens[i] for i in rows], scores[rows].argmax(axis=1))
        return scores, (held_out == fold), similarity, coverage

    def _fit_out_of_scope(self, features: np.ndarray, out_of_scope: np.ndarray) -> None:
        """Fit the logistic out-of-scope scorer on held-out features (pseudo out-of-scope = 1)."""
        if out_of_scope.sum() < 3 or (~out_of_scope).sum() < 3:
            self.oos_model = None
            return
        from sklearn.linear_model import LogisticRegression

        mean, std = features.mean(axis=0), features.std(axis=0) + 1e-9
        model = LogisticRegression(C=1.0, max_iter=1000)
        model.fit((features - mean) / std, out_of_scope.astype(int))
        self.oos_model = {
            "features": list(self.oos_features),
            "mean": mean.tolist(),
            "std": std.tolist(),
            "coef": model.coef_[0].tolist(),
            "intercept": float(model.intercept_[0]),
        }
        self._oos_arrays()

    def _oos_arrays(self) -> None:
        """Cache the scorer's standardisation folded into one weight vector and bias."""
        if self.oos_model is None:
            self._oos_weights, self._oos_bias = None, 0.0
            return
        coef = np.array(self.oos_model["coef"]) / np.array(self.oos_model["std"])
        self._oos_weights = coef
        self._oos_bias = self.oos_model["intercept"] - float(coef @ np.array(self.oos_model["mean"]))

    def _word_vectors(self, matrix):
        """Return the unit-length word-n-gram part of feature rows (for nearest-example similarity)."""
        low, high = self.similarity_range
        return row_normalized(matrix[:, low:high])

    def similarity(self, indices: np.ndarray, values: np.ndarray) -> float:
        """Return the cosine similarity of one message (sparse features) to its nearest training
        example in word n-grams; 0.0 when it shares none."""
        low, high = self.similarity_range
        if self._similarity_t is None:
            return 0.0
        inside = (indices >= low) & (indices < high)
        if not inside.any():
            return 0.0
        query = values[inside].astype(np.float64)
        query /= np.sqrt(float(query @ query))
        rows = indices[inside] - low
        indptr = self._similarity_t.indptr
        starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
        total = int(lengths.sum())
        if total == 0:
            return 0.0
        # Gather the posting lists of the message's n-grams without scipy's slower row slicing.
        offsets = np.repeat(starts - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
        positions = offsets + np.arange(total)
        products = np.bincount(
            self._similarity_t.indices[positions],
            weights=self._similarity_t.data[positions] * np.repeat(query, lengths),
        )
        return float(products.max())

    def _novelty(
        self, scores: np.ndarray, similarity: np.ndarray | None, coverage: np.ndarray | None
    ) -> np.ndarray:
        """Return the out-of-scope scorer's input rows: the ``oos_features`` columns, in order."""
        columns = confidence_features(scores, self.temperature)
        if similarity is not None:
            columns["similarity"] = np.asarray(similarity, dtype=np.float64)
        if coverage is not None:
            columns.update({name: coverage[:, i] for i, name in enumerate(COVERAGE_FEATURES)})
        # A model saved without its similarity examples scores as if nothing were similar (as before).
        missing = np.zeros(len(scores))
        return np.column_stack([columns.get(name, missing) for name in self.oos_features])

    def coverage_rows(self, token_lists: list[list[str]], scores: np.ndarray) -> np.ndarray | None:
        """Return the coverage features of messages (token lists) against their top-scoring intent;
        None when the score does not read them (or the model has no coverage counts)."""
        if self.coverage is None or not self._needs_coverage:
            return None
        return self.coverage.feature_rows(token_lists, np.asarray(scores).argmax(axis=1))

    def out_of_scope_scores(
        self, scores: np.ndarray, similarity: np.ndarray, coverage: np.ndarray | None = None
    ) -> np.ndarray:
        """Return the out-of-scope score (0..1, higher = less like the training data) of raw
        class-score rows, their nearest-example similarities and coverage features; zeros when no
        scorer was trained."""
        if self._oos_weights is None:
            return np.zeros(len(scores))
        logits = self._novelty(scores, similarity, coverage) @ self._oos_weights + self._oos_bias
        return 1.0 / (1.0 + np.exp(-logits))

    def train(self, examples: Sequence[Message], data: Any = None) -> None:
        """Fit the linear model on the training messages' features and intent labels.

        Before the final fit, cross-validated scores of the training examples calibrate the
        temperature and train the out-of-scope scorer; each training message gets them as
        ``held_out`` (intent, calibrated confidence, correct, pseudo out-of-scope, out-of-scope
        score) so the fallback can choose its thresholds from data."""
        labels = [m.data["intent_label"] for m in examples]
        self.classes = sorted(set(labels))
        tokens = [self._tokens(m) for m in examples] if self._needs_coverage else []
        truth_index = {name: i for i, name in enumerate(self.classes)}
        matrix = feature_matrix(examples)
        self.similarity_range = tuple(examples[0].data.get("similarity_range", (0, 0))) if examples else (0, 0)
        words = self._word_vectors(matrix)
        self.calibration = {}
        if len(self.classes) >= 2 and len(labels) >= 4:
            held_scores, pseudo_oos, held_similarity, held_coverage = self._held_out_scores(
                matrix, words, labels, tokens
            )
            truth = np.array([self.classes.index(label) for label in labels])
            in_scope = ~pseudo_oos
            if self.config["temperature"] == "auto":
                self.temperature = fit_temperature(
                    held_scores[in_scope],
                    truth[in_scope],
                    self.config["prior_temperature"],
                    self.config["prior_strength"],
                )
            probabilities = softmax(held_scores * self.temperature)
            top = probabilities.argmax(axis=1)
            confidence = probabilities[np.arange(len(top)), top]
            correct = top == truth
            # Out of scope against right answers only: a wrong answer is lost either way, so the
            # scorer should learn what separates unknown messages from answers worth keeping.
            contrast = pseudo_oos | correct
            features = self._novelty(held_scores, held_similarity, held_coverage)
            self._fit_out_of_scope(features[contrast], pseudo_oos[contrast])
            oos_scores = self.out_of_scope_scores(held_scores, held_similarity, held_coverage)
            raw_top = softmax(held_scores[in_scope]).max(axis=1)
            self.calibration = {
                "temperature": round(self.temperature, 4),
                "held_out_examples": int(in_scope.sum()),
                "pseudo_out_of_scope_examples": int(pseudo_oos.sum()),
                "held_out_accuracy": round(float(correct[in_scope].mean()), 4) if in_scope.any() else None,
                "ece_uncalibrated": round(expected_calibration_error(raw_top, correct[in_scope]), 4),
                "ece": round(expected_calibration_error(confidence[in_scope], correct[in_scope]), 4),
                # what the out-of-scope score reads (absent: too few pseudo out-of-scope examples)
                **({"out_of_scope_features": list(self.oos_features)} if self.oos_model else {}),
            }
            for i, message in enumerate(examples):
                message.data["held_out"] = {
                    "intent": self.classes[top[i]],
                    "confidence": float(confidence[i]),
                    "correct": bool(correct[i]),
                    "out_of_scope": bool(pseudo_oos[i]),
                    "out_of_scope_score": float(oos_scores[i]),
                }
        self.weights_t, self.bias = self._fit(matrix, labels, self.classes)
        self._set_similarity_examples(words)
        self.coverage = (
            IntentCoverage.fit(tokens, [truth_index[label] for label in labels], len(self.classes))
            if self._needs_coverage
            else None
        )

    def _set_similarity_examples(self, words) -> None:
        """Keep the training examples' word vectors (and their transpose) for similarity look-ups."""
        self.similarity_examples = words if words.shape[1] else None
        self._similarity_t = None if self.similarity_examples is None else words.T.tocsr()

    def training_report(self) -> dict[str, Any]:
        """Return what training measured: temperature and held-out calibration error."""
        return {"calibration": self.calibration} if self.calibration else {}

    def scores(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Return the raw class scores of one sparse feature vector."""
        return values @ self.weights_t[indices] + self.bias

    def _rank(self, message: Message, probabilities: np.ndarray) -> None:
        order = np.argsort(-probabilities, kind="stable")
        ranking = [{"name": self.classes[i], "confidence": float(probabilities[i])} for i in order]
        message.data["intent"] = dict(ranking[0]) if ranking else {"name": None, "confidence": 0.0}
        message.data["intent_ranking"] = ranking

    def process(self, message: Message) -> None:
        """Attach ``intent`` and the full ``intent_ranking``."""
        indices, values = message.data["sparse_features"]
        scores = self.scores(indices, values)[None, :].astype(np.float64)
        self._rank(message, softmax_rows(scores * self.temperature)[0])
        if self._oos_weights is not None:
            similarity = np.array([self.similarity(indices, values)]) if self._needs_similarity else None
            coverage = self.coverage_rows([self._tokens(message)], scores)
            score = self.out_of_scope_scores(scores, similarity, coverage)[0]
            message.data["out_of_scope_score"] = float(score)

    def process_batch(self, messages: Sequence[Message]) -> None:
        """Score all messages with one sparse-dense product."""
        if not messages:
            return
        matrix = feature_matrix(messages)
        scores = np.asarray(matrix @ self.weights_t + self.bias, dtype=np.float64)
        probabilities = softmax_rows(scores * self.temperature)
        similarity = None
        if self._oos_weights is not None and self._needs_similarity and self.similarity_examples is not None:
            similarity = nearest_similarity(self._word_vectors(matrix), self.similarity_examples)
        coverage = (
            self.coverage_rows([self._tokens(m) for m in messages], scores)
            if self._oos_weights is not None
            else None
        )
        oos_scores = self.out_of_scope_scores(scores, similarity, coverage)
        for message, row, oos_score in zip(messages, probabilities, oos_scores):
            self._rank(message, row)
            message.data["out_of_scope_score"] = float(oos_score)

    def persist(self, path: Path) -> None:
        """Save classes, weights and bias."""
        (path / "classes.json").write_text(
            json.dumps(
                {
                    "classes": self.classes,
                    "temperature": self.temperature,
                    "out_of_scope_model": self.oos_model,
                    "calibration": self.calibration,
                    "similarity_range": list(self.similarity_range),
                },
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
        np.savez(path / "weights.npz", weights_t=self.weights_t, bias=self.bias)
        if self.coverage is not None:
            (path / "coverage.json").write_text(
                json.dumps(self.coverage.state(), ensure_ascii=False), encoding="utf-8"
            )
        if self.similarity_examples is not None:
            examples = self.similarity_examples
            np.savez(
                path / "examples.npz",
                data=examples.data,
                indices=examples.indices,
                indptr=examples.indptr,
                shape=np.array(examples.shape),
            )

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> LinearIntentClassifier:
        """Rebuild from saved classes, weights and bias."""
        classifier = cls(config)
        meta = json.loads((path / "classes.json").read_text(encoding="utf-8"))
        classifier.classes = meta["classes"]
        classifier.temperature = float(meta["temperature"])
        classifier.oos_model = meta.get("out_of_scope_model")
        if classifier.oos_model is not None:
            saved = classifier.oos_model.get("features") or LEGACY_OUT_OF_SCOPE_FEATURES
            classifier.oos_features = tuple(saved)
        classifier.calibration = meta.get("calibration") or {}
        classifier._oos_arrays()
        with np.load(path / "weights.npz", allow_pickle=False) as arrays:
            classifier.weights_t = np.ascontiguousarray(arrays["weights_t"])
            classifier.bias = arrays["bias"]
        classifier.similarity_range = tuple(meta.get("similarity_range") or (0, 0))
        if (path / "coverage.json").is_file():
            classifier.coverage = IntentCoverage.from_state(
                json.loads((path / "coverage.json").read_text(encoding="utf-8"))
            )
        if (path / "examples.npz").is_file():
            import scipy.sparse as sp

            with np.load(path / "examples.npz", allow_pickle=False) as arrays:
                words = sp.csr_matrix(
                    (arrays["data"], arrays["indices"], arrays["indptr"]), shape=tuple(arrays["shape"])
                )
            classifier._set_similarity_examples(words)
        return classifier

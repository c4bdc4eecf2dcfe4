"""Linear intent classifiers over the sparse features, with softmax-calibrated confidences."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu.components.base import Component, register_component
from nlu.components.featurizer import feature_matrix
from nlu.message import Message


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Return the row-wise softmax of a 2-D score array."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


@register_component
class LinearIntentClassifier(Component):
    """One-vs-rest linear SVM (or logistic regression); confidence = softmax(temperature * score)."""

    name = "LinearIntentClassifier"

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {"model": "svm", "C": 0.5, "class_weight": None, "temperature": 5.0, "max_iter": 2000}

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.classes: list[str] = []
        self.weights_t = np.zeros((0, 0), dtype=np.float32)  # (n_features, n_classes)
        self.bias = np.zeros(0, dtype=np.float32)
        self.temperature = float(self.config["temperature"])

    def _estimator(self):
        model = self.config["model"]
        if model == "svm":
            from sklearn.svm import LinearSVC

            return LinearSVC(C=self.config["C"], class_weight=self.config["class_weight"],
                             max_iter=self.config["max_iter"])
        if model == "logreg":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=self.config["C"], class_weight=self.config["class_weight"],
                                      max_iter=self.config["max_iter"])
        raise ValueError(f"unknown model {model!r} for {self.name} (use 'svm' or 'logreg')")

    def train(self, examples: Sequence[Message], data: Any = None) -> None:
        """Fit the linear model on the training messages' features and intent labels."""
        labels = [m.data["intent_label"] for m in examples]
        self.classes = sorted(set(labels))
        matrix = feature_matrix(examples)
        dimension = matrix.shape[1]
        if len(self.classes) < 2:
            self.weights_t = np.zeros((dimension, len(self.classes)), dtype=np.float32)
            self.bias = np.ones(len(self.classes), dtype=np.float32)
            return
        estimator = self._estimator()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator.fit(matrix, labels)
        coef = np.asarray(estimator.coef_, dtype=np.float32)
        intercept = np.asarray(estimator.intercept_, dtype=np.float32)
        if coef.shape[0] == 1:  # binary problem: scikit-learn keeps one row for the second class
            coef = np.vstack([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]], dtype=np.float32) / 2
        order = [list(estimator.classes_).index(c) for c in self.classes]
        self.weights_t = np.ascontiguousarray(coef[order].T)
        self.bias = intercept[order]

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
        scores = self.scores(indices, values)
        self._rank(message, softmax_rows(scores[None, :] * self.temperature)[0])

    def process_batch(self, messages: Sequence[Message]) -> None:
        """Score all messages with one sparse-dense product."""
        if not messages:
            return
        scores = feature_matrix(messages) @ self.weights_t + self.bias
        probabilities = softmax_rows(np.asarray(scores, dtype=np.float64) * self.temperature)
        for message, row in zip(messages, probabilities):
            self._rank(message, row)

    def persist(self, path: Path) -> None:
        """Save classes, weights and bias."""
        (path / "classes.json").write_text(json.dumps({"classes": self.classes, "temperature": self.temperature},
                                                      ensure_ascii=False), encoding="utf-8")
        np.savez(path / "weights.npz", weights_t=self.weights_t, bias=self.bias)

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> LinearIntentClassifier:
        """Rebuild from saved classes, weights and bias."""
        classifier = cls(config)
        meta = json.loads((path / "classes.json").read_text(encoding="utf-8"))
        classifier.classes = meta["classes"]
        classifier.temperature = float(meta["temperature"])
        with np.load(path / "weights.npz", allow_pickle=False) as arrays:
            classifier.weights_t = np.ascontiguousarray(arrays["weights_t"])
            classifier.bias = arrays["bias"]
        return classifier

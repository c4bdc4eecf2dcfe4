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
    """One-vs-rest linear SVM (or logistic regression); confidence = softmax(temperature * score),
    with the temperature fitted on a held-out share of the training data (``temperature: auto``)."""

    name = "LinearIntentClassifier"

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {
            "model": "svm",
            "C": 1.0,
            "class_weight": None,
            "temperature": "auto",
            "calibration_split": 0.2,
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

    def _estimator(self):
        model = self.config["model"]
        if model == "svm":
            from sklearn.svm import LinearSVC

            return LinearSVC(
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

    def _calibrated_temperature(self, matrix, labels: list[str]) -> float:
        """Fit the softmax temperature on a held-out part of the training data (minimum log loss)."""
        from scipy.optimize import minimize_scalar

        rng = np.random.default_rng(self.config["random_state"])
        label_array = np.array(labels)
        held_out = np.zeros(len(labels), dtype=bool)
        for label in self.classes:  # stratified: hold out a share of each intent with >= 3 examples
            members = np.flatnonzero(label_array == label)
            if len(members) >= 3:
                count = max(1, round(len(members) * self.config["calibration_split"]))
                held_out[rng.choice(members, size=count, replace=False)] = True
        if held_out.sum() < 2 or (~held_out).sum() < 2:
            return 1.0
        weights_t, bias = self._fit(matrix[~held_out], list(label_array[~held_out]), self.classes)
        scores = np.asarray(matrix[held_out] @ weights_t + bias, dtype=np.float64)
        truth = np.array([self.classes.index(label) for label in label_array[held_out]])

        # A weak prior towards ``prior_temperature`` keeps small held-out sets (all correct, say)
        # from pushing the temperature to its bound; it fades as the held-out set grows.
        prior_log = np.log(self.config["prior_temperature"])
        prior_weight = self.config["prior_strength"] / len(truth)

        def log_loss(log_temperature: float) -> float:
            """Mean held-out log loss at this temperature, plus the prior."""
            scaled = scores * np.exp(log_temperature)
            scaled -= scaled.max(axis=1, keepdims=True)
            log_norm = np.log(np.exp(scaled).sum(axis=1))
            penalty = prior_weight * (log_temperature - prior_log) ** 2
            return float(np.mean(log_norm - scaled[np.arange(len(truth)), truth]) + penalty)

        best = minimize_scalar(log_loss, bounds=(np.log(0.5), np.log(50.0)), method="bounded")
        return float(np.exp(best.x))

    def train(self, examples: Sequence[Message], data: Any = None) -> None:
        """Fit the linear model on the training messages' features and intent labels."""
        labels = [m.data["intent_label"] for m in examples]
        self.classes = sorted(set(labels))
        matrix = feature_matrix(examples)
        if self.config["temperature"] == "auto":
            self.temperature = self._calibrated_temperature(matrix, labels)
        self.weights_t, self.bias = self._fit(matrix, labels, self.classes)

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
        (path / "classes.json").write_text(
            json.dumps({"classes": self.classes, "temperature": self.temperature}, ensure_ascii=False),
            encoding="utf-8",
        )
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

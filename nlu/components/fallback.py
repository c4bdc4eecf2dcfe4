"""Low-confidence and out-of-scope fallback, like Rasa's FallbackClassifier, with thresholds chosen
from held-out training data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nlu.calibration import lowest_threshold_for_precision
from nlu.components.base import Component, register_component
from nlu.message import Message

FALLBACK_INTENT = "nlu_fallback"
AUTO = "auto"
#: used when ``threshold: auto`` but the training data gave no held-out answers (too small)
DEFAULT_THRESHOLD = 0.4
LEARNED_FILE = "thresholds.json"


@register_component
class FallbackClassifier(Component):
    """Replaces the intent by ``nlu_fallback`` when the top confidence is below ``threshold`` or the
    message looks out of scope (``out_of_scope_score`` above ``out_of_scope_threshold``).

    ``threshold: auto`` (the default) picks, at training time, the lowest threshold that keeps at least
    ``precision_target`` precision on the classifier's cross-validated answers to the training data; a
    number pins it. ``out_of_scope_threshold: auto`` picks the score above which messages are treated
    as out of scope so that at most ``out_of_scope_loss`` of the right held-out answers are dropped;
    ``null`` turns the check off. With ``ambiguity_threshold`` set, also falls back when the top two
    intents are closer than it. The ranking keeps the real intents, with ``nlu_fallback`` on top.
    """

    name = "FallbackClassifier"
    reads_processed_training_messages = False

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {
            "threshold": AUTO,
            "precision_target": 0.97,
            "out_of_scope_threshold": AUTO,
            "out_of_scope_loss": 0.02,
            "min_intent_answers": 20,
            "ambiguity_threshold": None,
        }

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        for key in ("threshold", "out_of_scope_threshold"):
            value = self.config[key]
            if value != AUTO and value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{key} must be 'auto' or a number between 0 and 1, not {value!r}")
        configured = self.config["threshold"]
        self.threshold = DEFAULT_THRESHOLD if configured == AUTO else float(configured)
        configured_oos = self.config["out_of_scope_threshold"]
        # "auto" before training (or in a model saved without chosen thresholds): no check
        self.out_of_scope_threshold: float | None = (
            None if configured_oos in (AUTO, None) else float(configured_oos)
        )
        self.report: dict[str, Any] = {}
        self.intent_thresholds: dict[str, float] = {}

    def train(self, examples: Sequence[Message], data: Any = None) -> None:
        """Choose the thresholds set to ``auto`` from the classifier's held-out answers."""
        held = [m.data["held_out"] for m in examples if "held_out" in m.data]
        answers = [h for h in held if not h["out_of_scope"]]
        pseudo_oos = [h for h in held if h["out_of_scope"]]
        report: dict[str, Any] = {"held_out_answers": len(answers)}
        if answers:
            target = float(self.config["precision_target"])
            chosen = lowest_threshold_for_precision(
                [h["confidence"] for h in answers], [h["correct"] for h in answers], target
            )
            report["chosen_threshold"] = round(chosen, 4)
            report["chosen_for"] = f"lowest keeping {target:.0%} precision on held-out answers"
            if self.config["threshold"] == AUTO:
                self.threshold = chosen
                self.intent_thresholds = self._per_intent_thresholds(answers)
                report["intent_thresholds"] = {k: round(v, 4) for k, v in sorted(self.intent_thresholds.items())}
        report["threshold_source"] = (
            "config" if self.config["threshold"] != AUTO else "chosen" if answers else "default (too little data)"
        )
        if self.config["out_of_scope_threshold"] == AUTO and pseudo_oos and answers:
            kept_right = np.array(
                [
                    h["out_of_scope_score"]
                    for h in answers
                    if h["correct"] and h["confidence"] >= self.intent_thresholds.get(h["intent"], self.threshold)
                ]
            )
            if len(kept_right):
                self.out_of_scope_threshold = float(
                    np.quantile(kept_right, 1.0 - float(self.config["out_of_scope_loss"]))
                )
        report["threshold"] = round(self.threshold, 4)
        report["out_of_scope_threshold"] = (
            None if self.out_of_scope_threshold is None else round(self.out_of_scope_threshold, 4)
        )
        if answers:
            kept = [h for h in answers if not self._drops(h["confidence"], h["out_of_scope_score"], h["intent"])]
            report["held_out_precision"] = round(sum(h["correct"] for h in kept) / len(kept), 4) if kept else None
            report["held_out_accuracy"] = round(sum(h["correct"] for h in kept) / len(answers), 4)
            report["held_out_fallback_rate"] = round(1 - len(kept) / len(answers), 4)
        if pseudo_oos:
            caught = sum(self._drops(h["confidence"], h["out_of_scope_score"], h["intent"]) for h in pseudo_oos)
            report["pseudo_out_of_scope_examples"] = len(pseudo_oos)
            report["pseudo_out_of_scope_recall"] = round(caught / len(pseudo_oos), 4)
        self.report = report

    def _per_intent_thresholds(self, answers: list[dict[str, Any]]) -> dict[str, float]:
        """Return, for each predicted intent with enough held-out answers, the lowest threshold that
        keeps its own answers ``precision_target`` precise (a mixture of such sets is as precise).
        Intents the classifier rarely confuses (short affirm/deny/goodbye) so keep low thresholds,
        instead of paying for the confusable ones; intents with few answers use the global one."""
        by_intent: dict[str, list[dict[str, Any]]] = {}
        for answer in answers:
            by_intent.setdefault(answer["intent"], []).append(answer)
        thresholds = {}
        for intent, predicted in by_intent.items():
            if len(predicted) >= int(self.config["min_intent_answers"]):
                thresholds[intent] = lowest_threshold_for_precision(
                    [h["confidence"] for h in predicted],
                    [h["correct"] for h in predicted],
                    float(self.config["precision_target"]),
                )
        return thresholds

    def training_report(self) -> dict[str, Any]:
        """Return the chosen thresholds and what they do on held-out training data."""
        return {"fallback": self.report} if self.report else {}

    def _drops(self, confidence: float, out_of_scope_score: float, intent: str | None = None) -> bool:
        if confidence < self.intent_thresholds.get(intent, self.threshold):
            return True
        return self.out_of_scope_threshold is not None and out_of_scope_score > self.out_of_scope_threshold

    def should_fall_back(self, ranking: list[dict[str, Any]], out_of_scope_score: float = 0.0) -> bool:
        """Return True when the ranking is too unsure to trust or the message looks out of scope."""
        if not ranking:
            return True
        top = ranking[0]["confidence"]
        if self._drops(top, out_of_scope_score, ranking[0]["name"]):
            return True
        ambiguity = self.config["ambiguity_threshold"]
        return ambiguity is not None and len(ranking) > 1 and top - ranking[1]["confidence"] < ambiguity

    def process(self, message: Message) -> None:
        """Swap in ``nlu_fallback`` when the classifier was unsure or the message is out of scope."""
        ranking = message.data.get("intent_ranking", [])
        if not self.should_fall_back(ranking, message.data.get("out_of_scope_score", 0.0)):
            return
        threshold = self.intent_thresholds.get(ranking[0]["name"], self.threshold) if ranking else self.threshold
        fallback = {"name": FALLBACK_INTENT, "confidence": float(threshold)}
        message.data["intent"] = dict(fallback)
        message.data["intent_ranking"] = [fallback, *(r for r in ranking if r["name"] != FALLBACK_INTENT)]

    def persist(self, path: Path) -> None:
        """Save the thresholds in use (chosen or configured) and the training report."""
        learned = {
            "threshold": self.threshold,
            "out_of_scope_threshold": self.out_of_scope_threshold,
            "intent_thresholds": self.intent_thresholds,
            "report": self.report,
        }
        (path / LEARNED_FILE).write_text(json.dumps(learned, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> FallbackClassifier:
        """Rebuild with the thresholds chosen at training time for the options set to ``auto``; a
        number (or ``null``) in the model's config wins, so editing the config pins it."""
        fallback = cls(config)
        learned_path = path / LEARNED_FILE
        if learned_path.is_file():
            learned = json.loads(learned_path.read_text(encoding="utf-8"))
            fallback.report = learned.get("report") or {}
            if fallback.config["threshold"] == AUTO:
                fallback.threshold = float(learned["threshold"])
                fallback.intent_thresholds = {
                    k: float(v) for k, v in (learned.get("intent_thresholds") or {}).items()
                }
            if fallback.config["out_of_scope_threshold"] == AUTO:
                oos = learned.get("out_of_scope_threshold")
                fallback.out_of_scope_threshold = None if oos is None else float(oos)
        return fallback

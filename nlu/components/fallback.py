"""Low-confidence fallback, like Rasa's FallbackClassifier."""

from __future__ import annotations

from typing import Any

from nlu.components.base import Component, register_component
from nlu.message import Message

FALLBACK_INTENT = "nlu_fallback"


@register_component
class FallbackClassifier(Component):
    """Replaces the intent by ``nlu_fallback`` when the top confidence is below ``threshold``.

    With ``ambiguity_threshold`` set, also falls back when the top two intents are closer than it.
    The ranking keeps the real intents, with ``nlu_fallback`` inserted at the top.
    """

    name = "FallbackClassifier"

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {"threshold": 0.4, "ambiguity_threshold": None}

    def should_fall_back(self, ranking: list[dict[str, Any]]) -> bool:
        """Return True when the ranking is too unsure to trust."""
        if not ranking:
            return True
        top = ranking[0]["confidence"]
        if top < self.config["threshold"]:
            return True
        ambiguity = self.config["ambiguity_threshold"]
        return ambiguity is not None and len(ranking) > 1 and top - ranking[1]["confidence"] < ambiguity

    def process(self, message: Message) -> None:
        """Swap in ``nlu_fallback`` when the classifier was unsure."""
        ranking = message.data.get("intent_ranking", [])
        if not self.should_fall_back(ranking):
            return
        confidence = float(self.config["threshold"])
        fallback = {"name": FALLBACK_INTENT, "confidence": confidence}
        message.data["intent"] = dict(fallback)
        message.data["intent_ranking"] = [fallback, *(r for r in ranking if r["name"] != FALLBACK_INTENT)]

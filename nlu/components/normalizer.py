"""Text normalisation component (Vietnamese-aware)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nlu.components.base import Component, register_component
from nlu.message import Message
from nlu.normalization import TextNormalizer


@register_component
class VietnameseNormalizer(Component):
    """Adds the ``normalized`` (NFC, lower case, abbreviations expanded) and ``folded`` views."""

    name = "VietnameseNormalizer"

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        abbreviations = None
        if self.config["expand_abbreviations"]:
            from nlu.normalization import DEFAULT_ABBREVIATIONS

            abbreviations = {**DEFAULT_ABBREVIATIONS, **self.config["extra_abbreviations"]}
        else:
            abbreviations = {}
        self.normalizer = TextNormalizer(abbreviations, squeeze_repeats=self.config["squeeze_repeats"])

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the default configuration."""
        return {"expand_abbreviations": True, "extra_abbreviations": {}, "squeeze_repeats": True}

    def train(self, examples: Sequence[Message], data: Any = None) -> None:
        """Nothing to learn."""

    def process(self, message: Message) -> None:
        """Attach the normalised views of the message text."""
        message.data.update(self.normalizer.views(message.text))

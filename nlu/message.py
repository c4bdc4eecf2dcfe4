"""The message object passed through the pipeline components."""

from __future__ import annotations

from typing import Any

from nlu.training_data import TrainingExample


class Message:
    """A text plus whatever the pipeline components attach to it (views, features, intent, entities)."""

    __slots__ = ("data", "text")

    def __init__(self, text: str, data: dict[str, Any] | None = None) -> None:
        self.text = text
        self.data: dict[str, Any] = data if data is not None else {}

    @classmethod
    def from_example(cls, example: TrainingExample) -> Message:
        """Build a training message carrying the example's intent and entity labels."""
        return cls(example.text, {"intent_label": example.intent, "entity_labels": list(example.entities)})

    def get(self, key: str, default: Any = None) -> Any:
        """Return the attached value for ``key``."""
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Attach ``value`` under ``key``."""
        self.data[key] = value

    def __repr__(self) -> str:
        return f"Message({self.text!r}, keys={sorted(self.data)})"

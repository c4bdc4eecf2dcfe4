"""Base class and registry of pipeline components."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from nlu.message import Message
from nlu.training_data import TrainingData

COMPONENT_REGISTRY: dict[str, type[Component]] = {}

ComponentType = TypeVar("ComponentType", bound="type[Component]")


def register_component(cls: ComponentType) -> ComponentType:
    """Class decorator adding a component class to the registry under its ``name``."""
    COMPONENT_REGISTRY[cls.name] = cls
    return cls


def component_class(name: str) -> type[Component]:
    """Return the registered component class called ``name``."""
    try:
        return COMPONENT_REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(COMPONENT_REGISTRY))
        raise KeyError(f"unknown pipeline component {name!r} (known: {known})") from None


class Component:
    """A pipeline step: learns from training messages and annotates parsed messages."""

    name: ClassVar[str] = "Component"
    #: whether ``train`` reads what the earlier components' ``process_batch`` attached to the
    #: training messages; when no later component does, training skips that pass (scoring
    #: 13,000 SNIPS messages with the intent classifier only to throw the scores away cost ~3 s)
    reads_processed_training_messages: ClassVar[bool] = True

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        merged = copy.deepcopy(self.default_config())
        merged.update(config or {})
        self.config = merged

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """Return the component's default configuration."""
        return {}

    def train(self, examples: Sequence[Message], data: TrainingData | None = None) -> None:
        """Learn from training messages (already processed by the earlier components)."""

    def process(self, message: Message) -> None:
        """Annotate one message in place."""

    def process_batch(self, messages: Sequence[Message]) -> None:
        """Annotate several messages in place (override to vectorise)."""
        for message in messages:
            self.process(message)

    def training_report(self) -> dict[str, Any]:
        """Return what training measured or chose, for the model's metadata (empty by default)."""
        return {}

    def persist(self, path: Path) -> None:
        """Save learned state into the directory ``path`` (created by the caller)."""

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> Component:
        """Rebuild the component from ``path`` and its configuration."""
        return cls(config)


ProgressCallback = Callable[[str, float], None]

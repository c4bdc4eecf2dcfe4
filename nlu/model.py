"""Training a pipeline into a model directory, loading it, and parsing messages with it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlu.components.base import Component, component_class
from nlu.components.fallback import FALLBACK_INTENT
from nlu.message import Message
from nlu.normalization import nfc
from nlu.pipeline import build_components, load_pipeline_config
from nlu.training_data import TrainingData, load_training_data

MODEL_FORMAT = 1
METADATA_FILE = "metadata.json"

ProgressCallback = Callable[[str, float], None]


class ModelLoadError(RuntimeError):
    """A model directory is missing or unreadable."""


@dataclass(frozen=True)
class IntentPrediction:
    """An intent name with its confidence."""

    name: str
    confidence: float

    def to_rasa(self) -> dict[str, Any]:
        """Return ``{"name", "confidence"}``."""
        return {"name": self.name, "confidence": self.confidence}


@dataclass(frozen=True)
class Entity:
    """An extracted entity with character offsets into the parsed text."""

    entity: str
    value: Any
    start: int
    end: int
    confidence: float = 1.0
    extractor: str = ""
    role: str | None = None
    group: str | None = None
    processors: tuple[str, ...] = ()

    def to_rasa(self) -> dict[str, Any]:
        """Return the entity in Rasa's parse JSON shape (``role``, ``group`` and ``processors`` only
        when set, as Rasa does)."""
        payload: dict[str, Any] = {
            "entity": self.entity,
            "start": self.start,
            "end": self.end,
            "value": self.value,
            "confidence_entity": self.confidence,
            "extractor": self.extractor,
        }
        if self.role is not None:
            payload["role"] = self.role
        if self.group is not None:
            payload["group"] = self.group
        if self.processors:
            payload["processors"] = list(self.processors)
        return payload

    @classmethod
    def from_dict(cls, entity: dict[str, Any]) -> Entity:
        """Build an entity from a pipeline entity dict or Rasa's parse JSON."""
        confidence = entity.get("confidence_entity", entity.get("confidence", 1.0))
        return cls(
            entity["entity"],
            entity.get("value"),
            int(entity.get("start", 0)),
            int(entity.get("end", 0)),
            float(1.0 if confidence is None else confidence),
            entity.get("extractor") or "",
            entity.get("role"),
            entity.get("group"),
            tuple(entity.get("processors") or ()),
        )


@dataclass
class ParseResult:
    """The interpretation of one message."""

    text: str
    intent: IntentPrediction
    intent_ranking: list[IntentPrediction] = field(default_factory=list)
    entities: list[Entity] = field(default_factory=list)
    model_version: str = ""

    def to_rasa(self) -> dict[str, Any]:
        """Return the result in the JSON shape of Rasa's ``POST /model/parse``."""
        return {
            "text": self.text,
            "intent": self.intent.to_rasa(),
            "entities": [e.to_rasa() for e in self.entities],
            "intent_ranking": [p.to_rasa() for p in self.intent_ranking],
            "model_version": self.model_version,
        }

    @classmethod
    def from_rasa(cls, payload: dict[str, Any], model_version: str = "") -> ParseResult:
        """Build a result from Rasa's parse JSON."""
        intent = payload.get("intent") or {}
        name = intent.get("name") or FALLBACK_INTENT
        return cls(
            text=payload.get("text", ""),
            intent=IntentPrediction(name, float(intent.get("confidence") or 0.0)),
            intent_ranking=[
                IntentPrediction(r["name"], float(r.get("confidence") or 0.0))
                for r in payload.get("intent_ranking") or []
                if r.get("name")
            ],
            entities=[Entity.from_dict(e) for e in payload.get("entities") or []],
            model_version=str(payload.get("model_version") or model_version),
        )


def training_data_hash(data: TrainingData) -> str:
    """Return the SHA-256 of the data's canonical YAML."""
    return hashlib.sha256(data.to_yaml().encode("utf-8")).hexdigest()


def new_version(created: datetime, data_hash: str) -> str:
    """Return a sortable, unique model version string."""
    return f"{created:%Y%m%d-%H%M%S}-{data_hash[:6]}{uuid.uuid4().hex[:4]}"


def training_output_needed(components: Sequence[Component], position: int) -> bool:
    """Return whether training must run component ``position`` over the training messages: only
    when a later component's training reads what the components before it attached."""
    return any(c.reads_processed_training_messages for c in components[position + 1 :])


def train_model(
    data: TrainingData | Sequence[str | Path],
    out_dir: str | Path,
    config_path: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Train the configured pipeline on ``data`` and write the model to ``out_dir``; return it."""
    if not isinstance(data, TrainingData):
        data = load_training_data(data)
    else:
        data.validate()  # data built in code (e.g. reviewed messages) gets the checks files get
    if not data.examples:
        raise ValueError("no intent examples to train on")
    config = load_pipeline_config(config_path)
    report = progress or (lambda stage, fraction: None)
    started = time.perf_counter()
    components = build_components(config)
    messages = [Message.from_example(example) for example in data.examples]
    for position, component in enumerate(components):
        report(f"training {component.name}", position / (len(components) + 1))
        component.train(messages, data)
        if training_output_needed(components, position):
            component.process_batch(messages)
    report("saving model", len(components) / (len(components) + 1))
    created = datetime.now(UTC)
    data_hash = training_data_hash(data)
    metadata = {
        "format": MODEL_FORMAT,
        "version": new_version(created, data_hash),
        "created_at": created.isoformat(timespec="microseconds"),
        "training_data_hash": data_hash,
        "config": config,
        "intents": data.intents,
        "entities": data.entity_types,
        "n_examples": len(data.examples),
        "train_seconds": round(time.perf_counter() - started, 3),
        "components": [],
        # Calibration, chosen fallback thresholds and their held-out effect, for people and admin UIs.
        "training_report": {k: v for c in components for k, v in c.training_report().items()},
    }
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for position, component in enumerate(components):
            directory = f"{position:02d}_{component.name}"
            (staging / directory).mkdir()
            component.persist(staging / directory)
            metadata["components"].append(
                {"name": component.name, "directory": directory, "config": component.config}
            )
        (staging / METADATA_FILE).write_text(
            json.dumps(metadata, ensure_ascii=False, indent=2), encoding="utf-8"
        )
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report("done", 1.0)
    return out_dir


def read_model_metadata(model_dir: str | Path) -> dict[str, Any]:
    """Return the metadata.json of a model directory."""
    path = Path(model_dir) / METADATA_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{model_dir}: not a model directory (no {METADATA_FILE})") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: unreadable model metadata: {exc}") from None


def load_model(model_dir: str | Path) -> Interpreter:
    """Load a trained model directory into an in-process Interpreter."""
    model_dir = Path(model_dir)
    metadata = read_model_metadata(model_dir)
    components: list[Component] = []
    for entry in metadata["components"]:
        cls = component_class(entry["name"])
        components.append(cls.load(model_dir / entry["directory"], entry["config"]))
    return Interpreter(components, metadata, model_dir)


class Interpreter:
    """Parses messages with a loaded pipeline (synchronous, in-process)."""

    def __init__(
        self, components: list[Component], metadata: dict[str, Any], model_dir: Path | None = None
    ) -> None:
        self.components = components
        self.metadata = metadata
        self.model_dir = model_dir

    @property
    def version(self) -> str:
        """Return the model version."""
        return str(self.metadata.get("version", ""))

    @property
    def intents(self) -> list[str]:
        """Return the intents the model knows."""
        return list(self.metadata.get("intents", []))

    def _result(self, message: Message) -> ParseResult:
        intent = message.data.get("intent") or {"name": FALLBACK_INTENT, "confidence": 0.0}
        ranking = message.data.get("intent_ranking") or []
        return ParseResult(
            text=message.text,
            intent=IntentPrediction(intent["name"], float(intent["confidence"])),
            intent_ranking=[IntentPrediction(r["name"], float(r["confidence"])) for r in ranking],
            entities=[Entity.from_dict(e) for e in message.data.get("entities", [])],
            model_version=self.version,
        )

    def parse(self, text: str) -> ParseResult:
        """Interpret one message."""
        message = Message(nfc(text))
        if not message.text.strip():
            return self._result(message)
        for component in self.components:
            component.process(message)
        return self._result(message)

    async def aparse(self, text: str) -> ParseResult:
        """Interpret one message (async API; runs in-process)."""
        return self.parse(text)

    def parse_batch(self, texts: Sequence[str]) -> list[ParseResult]:
        """Interpret many messages, vectorising the classifier work."""
        messages = [Message(nfc(text)) for text in texts]
        active = [m for m in messages if m.text.strip()]
        if active:
            for component in self.components:
                component.process_batch(active)
        return [self._result(m) for m in messages]

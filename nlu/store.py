"""A directory of versioned model artefacts with an atomically switched active pointer."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nlu.model import (
    METADATA_FILE,
    Interpreter,
    ModelLoadError,
    ProgressCallback,
    load_model,
    read_model_metadata,
    train_model,
)
from nlu.training_data import TrainingData

ACTIVE_POINTER = "active.json"
VERSION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ModelInfo:
    """What the store knows about one model version."""

    version: str
    path: Path
    created_at: str
    training_data_hash: str
    intents: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] | None = None
    active: bool = False


def write_json_atomically(path: Path, payload: Any) -> None:
    """Write JSON to ``path`` via a temporary file and ``os.replace``."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class ModelStore:
    """Versioned NLU models under one directory; ``active.json`` names the active version."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def pointer_path(self) -> Path:
        """Return the path of the active-version pointer file."""
        return self.root / ACTIVE_POINTER

    def _version_dir(self, version: str) -> Path:
        if not VERSION_PATTERN.match(version):
            raise ValueError(f"invalid model version {version!r}")
        return self.root / version

    def add(self, model_dir: str | Path, activate: bool = False) -> str:
        """Copy a trained model directory into the store; return its version."""
        metadata = read_model_metadata(model_dir)
        version = str(metadata["version"])
        target = self._version_dir(version)
        self.root.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.root))
            shutil.rmtree(staging)
            shutil.copytree(model_dir, staging)
            os.replace(staging, target)
        if activate:
            self.activate(version)
        return version

    def train_and_add(
        self,
        data: TrainingData | Sequence[str | Path],
        config_path: str | Path | None = None,
        progress: ProgressCallback | None = None,
        activate: bool = False,
    ) -> str:
        """Train a model straight into the store; return its version."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".training-", dir=self.root))
        try:
            model_dir = train_model(data, staging / "model", config_path=config_path, progress=progress)
            version = str(read_model_metadata(model_dir)["version"])
            os.replace(model_dir, self._version_dir(version))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if activate:
            self.activate(version)
        return version

    def versions(self) -> list[ModelInfo]:
        """Return every stored version, oldest first."""
        if not self.root.is_dir():
            return []
        active = self.active_version()
        infos = []
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not (path / METADATA_FILE).is_file():
                continue
            try:
                metadata = read_model_metadata(path)
            except ModelLoadError:
                continue
            version = str(metadata.get("version", path.name))
            infos.append(
                ModelInfo(
                    version=version,
                    path=path,
                    created_at=str(metadata.get("created_at", "")),
                    training_data_hash=str(metadata.get("training_data_hash", "")),
                    intents=list(metadata.get("intents", [])),
                    config=metadata.get("config", {}),
                    metrics=metadata.get("metrics"),
                    active=version == active,
                )
            )
        return sorted(infos, key=lambda info: (info.created_at, info.version))

    def info(self, version: str) -> ModelInfo:
        """Return the ModelInfo of one version (KeyError if unknown)."""
        for info in self.versions():
            if info.version == version:
                return info
        raise KeyError(f"no model version {version!r} in {self.root}")

    def active_version(self) -> str | None:
        """Return the active version, or None when nothing (valid) is active."""
        try:
            pointer = json.loads(self.pointer_path.read_text(encoding="utf-8"))
            version = str(pointer["version"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            return version if (self._version_dir(version) / METADATA_FILE).is_file() else None
        except ValueError:
            return None

    def activate(self, version: str) -> None:
        """Make ``version`` the active model (atomic pointer switch)."""
        if not (self._version_dir(version) / METADATA_FILE).is_file():
            raise KeyError(f"no model version {version!r} in {self.root}")
        write_json_atomically(
            self.pointer_path,
            {
                "version": version,
                "activated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            },
        )

    def model_path(self, version: str) -> Path:
        """Return the directory of ``version``."""
        path = self._version_dir(version)
        if not (path / METADATA_FILE).is_file():
            raise KeyError(f"no model version {version!r} in {self.root}")
        return path

    def load(self, version: str) -> Interpreter:
        """Load one version."""
        return load_model(self.model_path(version))

    def load_active(self) -> Interpreter:
        """Load the active version (ModelLoadError when none is active)."""
        version = self.active_version()
        if version is None:
            raise ModelLoadError(f"no active NLU model in {self.root} (train one, or activate a version)")
        return load_model(self._version_dir(version))

    def set_metrics(self, version: str, metrics: dict[str, Any]) -> None:
        """Record test metrics in a version's metadata.json."""
        path = self.model_path(version) / METADATA_FILE
        metadata = read_model_metadata(path.parent)
        metadata["metrics"] = metrics
        write_json_atomically(path, metadata)

    def remove(self, version: str) -> None:
        """Delete a version (not the active one)."""
        if version == self.active_version():
            raise ValueError(f"model version {version!r} is active; activate another one first")
        shutil.rmtree(self.model_path(version))

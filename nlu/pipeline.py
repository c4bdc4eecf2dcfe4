"""Pipeline configuration (Rasa-like config.yml) and building components from it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

import nlu.components  # noqa: F401  (registers the components)
from nlu.components.base import Component, component_class
from nlu import yaml_io

DEFAULT_CONFIG_PATH = Path(__file__).with_name("config.yml")
CONFIG_TOP_KEYS = {"recipe", "language", "pipeline", "assistant_id", "policies"}


class NLUConfigError(ValueError):
    """Invalid pipeline configuration."""


def load_pipeline_config(path: str | Path | None = None) -> dict[str, Any]:
    """Read and check a pipeline config file (None = the packaged default)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG_PATH
    try:
        raw = yaml_io.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise NLUConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise NLUConfigError(f"{where}: invalid YAML in config: {getattr(exc, 'problem', exc)}") from None
    return check_pipeline_config(raw, str(path))


def check_pipeline_config(raw: Any, source: str = "<config>") -> dict[str, Any]:
    """Validate a config mapping and return a normalised copy."""
    if not isinstance(raw, dict) or not isinstance(raw.get("pipeline"), list) or not raw["pipeline"]:
        raise NLUConfigError(f"{source}: config needs a non-empty 'pipeline' list")
    unknown = set(raw) - CONFIG_TOP_KEYS
    if unknown:
        raise NLUConfigError(f"{source}: unknown config key {min(unknown)!r}")
    pipeline = []
    for position, entry in enumerate(raw["pipeline"], start=1):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or "name" not in entry:
            raise NLUConfigError(f"{source}: pipeline entry {position} needs a 'name'")
        try:
            cls = component_class(entry["name"])
        except KeyError as exc:
            raise NLUConfigError(f"{source}: pipeline entry {position}: {exc.args[0]}") from None
        options = {k: v for k, v in entry.items() if k != "name"}
        unknown_options = set(options) - set(cls.default_config())
        if unknown_options:
            raise NLUConfigError(
                f"{source}: pipeline entry {position} ({entry['name']}): unknown option {min(unknown_options)!r}"
            )
        try:
            cls(options)
        except (KeyError, TypeError, ValueError) as exc:
            raise NLUConfigError(
                f"{source}: pipeline entry {position} ({entry['name']}): invalid options: {exc}"
            ) from None
        pipeline.append({"name": entry["name"], **options})
    config = copy.deepcopy(raw)
    config["pipeline"] = pipeline
    return config


def build_components(config: dict[str, Any]) -> list[Component]:
    """Instantiate the configured components (untrained)."""
    return [
        component_class(e["name"])({k: v for k, v in e.items() if k != "name"}) for e in config["pipeline"]
    ]

"""YAML reading through libyaml when PyYAML was built with it (ten times faster than the pure-Python
parser: the bot's responses and FAQ are read at every start), the pure-Python loader otherwise."""

from __future__ import annotations

from typing import Any

import yaml

#: the safe loader (plain data only), in C when available
SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """The plain data of one YAML document, like ``yaml.safe_load``."""
    return yaml.load(text, Loader=SafeLoader)  # noqa: S506 - a safe loader

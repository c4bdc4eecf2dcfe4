"""What the bot says: templates per language, kept in data/ so a shop edits them without code."""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nlu import yaml_io


class ResponseError(Exception):
    """The responses file is missing a template or is malformed."""


@dataclass(frozen=True)
class Responses:
    """Templates by key and locale; each template may have several variants."""

    templates: dict[str, dict[str, tuple[str, ...]]]
    default_locale: str = "vi"

    @classmethod
    def load(cls, path: Path, default_locale: str = "vi") -> Responses:
        """Read a responses YAML file, or every ``*.yml`` in a folder: ``key: {vi: text | [texts], en: ...}``."""
        files = sorted(path.glob("*.yml")) if path.is_dir() else [path]
        templates: dict[str, dict[str, tuple[str, ...]]] = {}
        for file in files:
            for key, by_locale in _read_templates(file).items():
                if key in templates:
                    raise ResponseError(f"{file}: response {key!r} is defined twice")
                templates[key] = by_locale
        return cls(templates, default_locale)

    def has(self, key: str) -> bool:
        """Whether a template with this key exists."""
        return key in self.templates

    def render(self, key: str, locale: str, *, variant: int = 0, **values: Any) -> str:
        """The template for ``key`` in ``locale`` (falling back to the default locale), filled in."""
        by_locale = self.templates.get(key)
        if by_locale is None:
            raise ResponseError(f"no response template named {key!r}")
        texts = by_locale.get(locale) or by_locale.get(self.default_locale) or next(iter(by_locale.values()))
        template = texts[variant % len(texts)]
        return _SafeFormatter().format(template, **values)


def _read_templates(path: Path) -> dict[str, dict[str, tuple[str, ...]]]:
    try:
        document = yaml_io.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ResponseError(f"{path}: cannot read responses: {exc}") from exc
    responses = document.get("responses", document)
    if not isinstance(responses, dict):
        raise ResponseError(f"{path}: expected a mapping of response keys")
    templates: dict[str, dict[str, tuple[str, ...]]] = {}
    for key, by_locale in responses.items():
        if not isinstance(by_locale, dict):
            raise ResponseError(f"{path}: response {key!r} must map locales to texts")
        templates[key] = {
            locale: tuple(texts) if isinstance(texts, list) else (str(texts),) for locale, texts in by_locale.items()
        }
    return templates


class _SafeFormatter(string.Formatter):
    """Leaves unknown placeholders visible instead of raising, so a typo in data never crashes a turn."""

    def get_value(self, key: Any, args: Any, kwargs: dict[str, Any]) -> Any:
        if isinstance(key, str) and key not in kwargs:
            return "{" + key + "}"
        return super().get_value(key, args, kwargs)

"""Reading and writing NLU training data in Rasa 3 YAML.

Supported: ``version``; an ``nlu`` list of ``intent``, ``synonym``, ``regex`` and ``lookup``
items whose ``examples`` are a block string of ``- `` lines or a list of ``{text, metadata}``
mappings; inline entity annotations ``[text](entity)``, ``[text](entity:value)`` and
``[text]{"entity": ..., "value": ..., "role": ..., "group": ...}``. The keys ``responses``,
``stories`` and ``rules`` may share the file and are ignored. Any problem raises
:class:`TrainingDataError` naming the file and line: malformed YAML or annotations, entity spans
that cross, a regex that does not compile, a synonym variant mapped to two different values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nlu import yaml_io
from nlu.normalization import fold

KNOWN_TOP_KEYS = {"version", "nlu", "responses", "stories", "rules"}
IGNORED_TOP_KEYS = {"responses", "stories", "rules"}
ITEM_KINDS = ("intent", "synonym", "regex", "lookup")
ANNOTATION_KEYS = {"entity", "value", "role", "group"}

# Rasa's inline annotation grammar: [entity text](entity) / [text](entity:value) / [text]{json}
ANNOTATION_PATTERN = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<short>[^()\[\]{}]*)\)|(?P<json>\{[^{}\[\]]*\}))"
)


class TrainingDataError(ValueError):
    """Invalid training data; ``str()`` gives ``file:line: problem``."""

    def __init__(self, file: str | Path | None, line: int | None, message: str) -> None:
        self.file = str(file) if file is not None else None
        self.line = line
        self.message = message
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.file or "<training data>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class EntityAnnotation:
    """An entity marked in a training example (character offsets into the plain text)."""

    entity: str
    value: str
    start: int
    end: int
    role: str | None = None
    group: str | None = None


@dataclass
class TrainingExample:
    """One intent example: plain text, its intent and its annotated entities."""

    text: str
    intent: str
    entities: list[EntityAnnotation] = field(default_factory=list)
    metadata: Any = None
    source_file: str | None = field(default=None, compare=False, repr=False)
    source_line: int | None = field(default=None, compare=False, repr=False)

    def annotated_text(self) -> str:
        """Return the text with inline Rasa entity annotations."""
        return annotate_text(self.text, self.entities)


@dataclass
class RegexFeature:
    """A named regular expression (Rasa ``regex`` item)."""

    name: str
    patterns: list[str]


@dataclass
class LookupTable:
    """A named list of values (Rasa ``lookup`` item)."""

    name: str
    elements: list[str]


@dataclass
class TrainingData:
    """Everything read from a set of Rasa NLU files."""

    examples: list[TrainingExample] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)  # canonical value -> variants
    regexes: list[RegexFeature] = field(default_factory=list)
    lookups: list[LookupTable] = field(default_factory=list)
    intent_metadata: dict[str, Any] = field(default_factory=dict)
    # where each synonym variant was declared (variant -> (file, line)), for error messages
    synonym_sources: dict[str, tuple[str | None, int | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def intents(self) -> list[str]:
        """Return the intent names in order of first appearance."""
        return list(dict.fromkeys(example.intent for example in self.examples))

    @property
    def entity_types(self) -> list[str]:
        """Return the annotated entity names, sorted."""
        return sorted({ent.entity for example in self.examples for ent in example.entities})

    def synonym_map(self) -> dict[str, str]:
        """Return variant -> canonical value, from synonym items and annotations with a value.

        Variants are compared as the synonym mapper matches them (ignoring case, diacritics and
        repeated spaces), so one variant mapped to two different values is a TrainingDataError.
        """
        mapping: dict[str, str] = {}
        claimed: dict[str, tuple[str, str, tuple[str | None, int | None]]] = {}

        def claim(variant: str, canonical: str, where: tuple[str | None, int | None]) -> None:
            key = " ".join(fold(variant).split())
            earlier = claimed.get(key)
            if earlier is not None and earlier[1] != canonical:
                first = f"{earlier[2][0] or '<training data>'}:{earlier[2][1]}"
                raise TrainingDataError(
                    where[0],
                    where[1],
                    f"synonym {variant!r} maps to {canonical!r} here but to {earlier[1]!r} at {first}",
                )
            claimed.setdefault(key, (variant, canonical, where))
            mapping[variant] = canonical

        for example in self.examples:
            for ent in example.entities:
                surface = example.text[ent.start : ent.end]
                if surface != ent.value:
                    claim(surface, ent.value, (example.source_file, example.source_line))
        for canonical, variants in self.synonyms.items():
            for variant in variants:
                claim(variant, canonical, self.synonym_sources.get(variant, (None, None)))
        return mapping

    def validate(self) -> None:
        """Raise TrainingDataError for data no pipeline can learn from: entity spans outside the
        text, empty or crossing one another, or a synonym variant mapped to two values."""
        for example in self.examples:
            check_entity_spans(example)
        self.synonym_map()

    def merge(self, other: TrainingData) -> TrainingData:
        """Return a new TrainingData holding this data followed by ``other``."""
        synonyms = {key: list(values) for key, values in self.synonyms.items()}
        for canonical, variants in other.synonyms.items():
            known = synonyms.setdefault(canonical, [])
            known.extend(v for v in variants if v not in known)
        return TrainingData(
            examples=[*self.examples, *other.examples],
            synonyms=synonyms,
            regexes=_merge_named(self.regexes, other.regexes, "patterns", RegexFeature),
            lookups=_merge_named(self.lookups, other.lookups, "elements", LookupTable),
            intent_metadata={**self.intent_metadata, **other.intent_metadata},
            synonym_sources={**other.synonym_sources, **self.synonym_sources},
        )

    def to_yaml(self) -> str:
        """Return this data as Rasa 3 YAML that reads back to an equal TrainingData."""
        return dump_training_data(self)


def check_entity_spans(example: TrainingExample) -> None:
    """Raise TrainingDataError when an example's entity spans are empty, out of the text or cross."""
    where = (example.source_file, example.source_line)
    previous: EntityAnnotation | None = None
    for ent in sorted(example.entities, key=lambda e: (e.start, e.end)):
        if not 0 <= ent.start < ent.end <= len(example.text):
            raise TrainingDataError(
                *where, f"entity {ent.entity!r} span {ent.start}-{ent.end} is outside {example.text!r}"
            )
        if previous is not None and ent.start < previous.end:
            raise TrainingDataError(
                *where,
                f"entity spans cross in {example.text!r}: {previous.entity!r} at "
                f"{previous.start}-{previous.end} and {ent.entity!r} at {ent.start}-{ent.end}",
            )
        previous = ent


def _merge_named(first: list, second: list, attr: str, kind: type) -> list:
    merged: dict[str, list[str]] = {}
    for item in [*first, *second]:
        values = merged.setdefault(item.name, [])
        values.extend(v for v in getattr(item, attr) if v not in values)
    return [kind(name, values) for name, values in merged.items()]


# ---------------------------------------------------------------------------------------------
# Annotation parsing


def parse_annotated_text(
    raw: str, file: str | None = None, line: int | None = None
) -> tuple[str, list[EntityAnnotation]]:
    """Split an annotated example into plain text and entity annotations."""
    pieces: list[str] = []
    entities: list[EntityAnnotation] = []
    position = 0
    plain_length = 0
    for match in ANNOTATION_PATTERN.finditer(raw):
        before = raw[position : match.start()]
        _check_no_stray_brackets(before, raw, file, line)
        pieces.append(before)
        plain_length += len(before)
        surface = match.group("text")
        entity, value, role, group = _annotation_target(match, surface, raw, file, line)
        entities.append(
            EntityAnnotation(entity, value, plain_length, plain_length + len(surface), role, group)
        )
        pieces.append(surface)
        plain_length += len(surface)
        position = match.end()
    rest = raw[position:]
    _check_no_stray_brackets(rest, raw, file, line)
    pieces.append(rest)
    return "".join(pieces), entities


def _check_no_stray_brackets(segment: str, raw: str, file: str | None, line: int | None) -> None:
    if "[" in segment or "]" in segment:
        raise TrainingDataError(
            file, line, f"unbalanced or malformed entity annotation brackets in example {raw!r}"
        )


def _annotation_target(
    match: re.Match, surface: str, raw: str, file: str | None, line: int | None
) -> tuple[str, str, str | None, str | None]:
    if match.group("json") is not None:
        try:
            spec = json.loads(match.group("json"))
        except json.JSONDecodeError as exc:
            raise TrainingDataError(
                file, line, f"invalid JSON entity annotation in {raw!r}: {exc.msg}"
            ) from None
        if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str) or not spec["entity"]:
            raise TrainingDataError(file, line, f"entity annotation without an 'entity' name in {raw!r}")
        unknown = set(spec) - ANNOTATION_KEYS
        if unknown:
            raise TrainingDataError(
                file, line, f"unknown key {min(unknown)!r} in entity annotation in {raw!r}"
                " (expected entity, value, role, group)"
            )
        for key in ("value", "role", "group"):
            if key in spec and not isinstance(spec[key], (str, int, float)):
                raise TrainingDataError(file, line, f"entity annotation {key!r} must be a string in {raw!r}")
        value = spec.get("value", surface)
        role, group = spec.get("role"), spec.get("group")
        return (
            spec["entity"],
            str(value),
            None if role is None else str(role),
            None if group is None else str(group),
        )
    short = match.group("short").strip()
    entity, _, value = short.partition(":")
    entity = entity.strip()
    if not entity:
        raise TrainingDataError(file, line, f"entity annotation without an entity name in {raw!r}")
    return entity, (value.strip() or surface), None, None


def annotate_text(text: str, entities: Iterable[EntityAnnotation]) -> str:
    """Return ``text`` with inline annotations for ``entities`` (the inverse of parsing)."""
    out: list[str] = []
    position = 0
    for ent in sorted(entities, key=lambda e: e.start):
        out.append(text[position : ent.start])
        surface = text[ent.start : ent.end]
        if ent.role is None and ent.group is None and ent.value == surface:
            out.append(f"[{surface}]({ent.entity})")
        else:
            spec: dict[str, str] = {"entity": ent.entity}
            if ent.value != surface:
                spec["value"] = ent.value
            if ent.role is not None:
                spec["role"] = ent.role
            if ent.group is not None:
                spec["group"] = ent.group
            out.append(f"[{surface}]{json.dumps(spec, ensure_ascii=False)}")
        position = ent.end
    out.append(text[position:])
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Reading


def load_training_data(paths: Iterable[str | Path] | str | Path) -> TrainingData:
    """Read Rasa YAML NLU data from files and/or directories (recursively, ``*.yml``/``*.yaml``)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    data = TrainingData()
    for file in _expand_paths(paths):
        data = data.merge(read_training_file(file))
    data.validate()
    return data


def _expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise TrainingDataError(path, None, "no such file or directory")
    return files


def read_training_file(path: str | Path) -> TrainingData:
    """Read one Rasa YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TrainingDataError(path, None, f"cannot read file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TrainingDataError(path, None, "file is not valid UTF-8") from None
    return read_training_yaml(text, str(path))


def read_training_yaml(text: str, file: str = "<string>") -> TrainingData:
    """Parse Rasa YAML NLU data given as a string (``file`` is used in error messages)."""
    try:
        root = yaml.compose(text, Loader=yaml_io.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise TrainingDataError(file, line, f"invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise TrainingDataError(file, None, f"invalid YAML: {exc}") from None
    data = TrainingData()
    if root is None:
        return data
    if not isinstance(root, yaml.MappingNode):
        raise TrainingDataError(file, _line(root), "top level must be a mapping with an 'nlu' key")
    for key_node, value_node in root.value:
        key = key_node.value
        if key not in KNOWN_TOP_KEYS:
            known = ", ".join(sorted(KNOWN_TOP_KEYS))
            raise TrainingDataError(
                file, _line(key_node), f"unknown top-level key {key!r} (expected one of {known})"
            )
        if key == "version":
            if not isinstance(value_node, yaml.ScalarNode):
                raise TrainingDataError(file, _line(value_node), "'version' must be a string such as \"3.1\"")
        elif key == "nlu":
            _read_nlu_section(value_node, file, data)
    return data


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _read_nlu_section(node: yaml.Node, file: str, data: TrainingData) -> None:
    if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
        return
    if not isinstance(node, yaml.SequenceNode):
        raise TrainingDataError(file, _line(node), "'nlu' must be a list of items")
    for item in node.value:
        _read_nlu_item(item, file, data)


def _read_nlu_item(node: yaml.Node, file: str, data: TrainingData) -> None:
    if not isinstance(node, yaml.MappingNode):
        raise TrainingDataError(
            file, _line(node), "each 'nlu' item must be a mapping with intent/synonym/regex/lookup"
        )
    fields = {key.value: (key, value) for key, value in node.value}
    kinds = [kind for kind in ITEM_KINDS if kind in fields]
    if len(kinds) != 1:
        problem = "has none" if not kinds else f"has {', '.join(kinds)}"
        raise TrainingDataError(
            file,
            _line(node),
            f"an 'nlu' item needs exactly one of intent, synonym, regex, lookup ({problem})",
        )
    kind = kinds[0]
    allowed = {kind, "examples", "metadata"}
    for key, (key_node, _) in fields.items():
        if key not in allowed:
            raise TrainingDataError(file, _line(key_node), f"unknown key {key!r} in {kind} item")
    name_node = fields[kind][1]
    if not isinstance(name_node, yaml.ScalarNode) or not name_node.value.strip():
        raise TrainingDataError(file, _line(name_node), f"'{kind}' needs a non-empty name")
    name = name_node.value.strip()
    if "examples" not in fields:
        raise TrainingDataError(file, _line(node), f"{kind} {name!r} has no 'examples'")
    examples_node = fields["examples"][1]
    entries = _example_entries(examples_node, file, kind, name)
    if not entries:
        raise TrainingDataError(file, _line(examples_node), f"{kind} {name!r} has no examples")
    if kind == "intent":
        if "metadata" in fields:
            data.intent_metadata[name] = _to_python(fields["metadata"][1])
        for raw, metadata, line in entries:
            text, entities = parse_annotated_text(raw, file, line)
            if not text.strip():
                raise TrainingDataError(file, line, f"empty example in intent {name!r}")
            example = TrainingExample(text, name, entities, metadata, file, line)
            check_entity_spans(example)
            data.examples.append(example)
    elif kind == "synonym":
        variants = data.synonyms.setdefault(name, [])
        for raw, _, line in entries:
            if raw not in variants:
                variants.append(raw)
            data.synonym_sources.setdefault(raw, (file, line))
    elif kind == "regex":
        for raw, _, line in entries:
            try:
                re.compile(raw)
            except re.error as exc:
                raise TrainingDataError(
                    file, line, f"invalid regular expression in regex {name!r}: {exc}"
                ) from None
        data.regexes = _merge_named(
            data.regexes, [RegexFeature(name, [raw for raw, _, _ in entries])], "patterns", RegexFeature
        )
    else:
        data.lookups = _merge_named(
            data.lookups, [LookupTable(name, [raw for raw, _, _ in entries])], "elements", LookupTable
        )


def _example_entries(node: yaml.Node, file: str, kind: str, name: str) -> list[tuple[str, Any, int]]:
    """Return (raw example, metadata, line) triples for an ``examples`` value."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag != "tag:yaml.org,2002:str" and node.value in ("", "~", "null"):
            return []
        return _block_entries(node, file, kind, name)
    if isinstance(node, yaml.SequenceNode):
        entries = []
        for item in node.value:
            if isinstance(item, yaml.ScalarNode):
                entries.append((item.value.strip(), None, _line(item)))
                continue
            if not isinstance(item, yaml.MappingNode):
                raise TrainingDataError(
                    file, _line(item), f"bad example in {kind} {name!r}: expected '- text: ...'"
                )
            keys = {k.value: v for k, v in item.value}
            unknown = set(keys) - {"text", "metadata"}
            if unknown:
                raise TrainingDataError(
                    file, _line(item), f"unknown key {min(unknown)!r} in example of {kind} {name!r}"
                )
            if "text" not in keys or not isinstance(keys["text"], yaml.ScalarNode):
                raise TrainingDataError(file, _line(item), f"example of {kind} {name!r} has no 'text'")
            metadata = _to_python(keys["metadata"]) if "metadata" in keys else None
            entries.append((keys["text"].value.strip(), metadata, _line(keys["text"])))
        return entries
    raise TrainingDataError(file, _line(node), f"'examples' of {kind} {name!r} must be a block of '- ' lines")


def _block_entries(node: yaml.ScalarNode, file: str, kind: str, name: str) -> list[tuple[str, Any, int]]:
    block_style = node.style in ("|", ">")
    first_line = node.start_mark.line + (2 if block_style else 1)
    entries = []
    for offset, raw_line in enumerate(node.value.split("\n")):
        stripped = raw_line.strip()
        if not stripped:
            continue
        line = first_line + offset if block_style else first_line
        if not stripped.startswith("-"):
            raise TrainingDataError(
                file, line, f"example lines of {kind} {name!r} must start with '- ', got {stripped!r}"
            )
        example = stripped[1:].strip()
        if not example:
            raise TrainingDataError(file, line, f"empty example in {kind} {name!r}")
        entries.append((example, None, line))
    return entries


def _to_python(node: yaml.Node) -> Any:
    return yaml.SafeLoader(yaml.serialize(node)).get_single_data() if node is not None else None


# ---------------------------------------------------------------------------------------------
# Writing


def _yaml_scalar(value: str) -> str:
    """Return ``value`` as a one-line YAML scalar (quoted only when needed)."""
    dumped = yaml.safe_dump(value, allow_unicode=True, default_flow_style=True, width=10**9)
    return dumped.removesuffix("\n...\n").rstrip("\n")


def _block_line_is_safe(line: str) -> bool:
    return line == line.strip() and "\n" not in line and line != ""


def dump_training_data(data: TrainingData) -> str:
    """Return Rasa 3 YAML for ``data``."""
    out = ['version: "3.1"', "nlu:"]
    by_intent: dict[str, list[TrainingExample]] = {}
    for example in data.examples:
        by_intent.setdefault(example.intent, []).append(example)
    for intent, examples in by_intent.items():
        out.append(f"- intent: {_yaml_scalar(intent)}")
        if intent in data.intent_metadata:
            meta = json.dumps(data.intent_metadata[intent], ensure_ascii=False)
            out.append(f"  metadata: {meta}")
        annotated = [example.annotated_text() for example in examples]
        if any(example.metadata is not None for example in examples) or not all(
            map(_block_line_is_safe, annotated)
        ):
            out.append("  examples:")
            for example, text in zip(examples, annotated):
                out.append(f"  - text: {_yaml_scalar(text)}")
                if example.metadata is not None:
                    out.append(f"    metadata: {json.dumps(example.metadata, ensure_ascii=False)}")
        else:
            out.append("  examples: |")
            out.extend(f"    - {text}" for text in annotated)
    for canonical, variants in data.synonyms.items():
        out.extend(_named_block("synonym", canonical, variants))
    for regex in data.regexes:
        out.extend(_named_block("regex", regex.name, regex.patterns))
    for lookup in data.lookups:
        out.extend(_named_block("lookup", lookup.name, lookup.elements))
    return "\n".join(out) + "\n"


def _named_block(kind: str, name: str, values: list[str]) -> list[str]:
    lines = [f"- {kind}: {_yaml_scalar(name)}"]
    if all(map(_block_line_is_safe, values)):
        lines.append("  examples: |")
        lines.extend(f"    - {value}" for value in values)
    else:
        lines.append("  examples:")
        lines.extend(f"  - {_yaml_scalar(value)}" for value in values)
    return lines


def write_training_data(data: TrainingData, path: str | Path) -> None:
    """Write ``data`` as Rasa 3 YAML to ``path``."""
    Path(path).write_text(dump_training_data(data), encoding="utf-8")

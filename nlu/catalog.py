"""Product names from the shop's catalog as a ``product`` lookup table, generated at training time.

Customers rarely type a catalog name in full ("Nồi chiên không dầu Bếp Việt 5.5L"): they write the
kind of product ("nồi chiên không dầu", "nồi chiên"), without diacritics ("noi chien"), with chat
abbreviations ("nồi chiên k dầu", "nckd") or in English ("air fryer", "airfryer"). ``product_forms``
derives those forms from a catalog entry; ``catalog_training_data`` turns a catalog into a lookup
table to merge into the training data, so the lookup extractor and the CRF's lookup features know
the shop's own products. The bot matches the same forms (``bot/catalog.py``) to find the product a
message is about, so what the NLU tags and what the bot answers agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from nlu import yaml_io
from nlu.normalization import fold
from nlu.training_data import LookupTable, TrainingData, TrainingDataError, load_training_data

PRODUCT_ENTITY = "product"
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|\S+", re.UNICODE)
#: modifiers a customer drops from a product kind ("nồi cơm điện" -> "nồi cơm"); folded
DROPPABLE_TAILS = ("dien", "khong day", "dien tu", "thong minh", "cam tay", "mini")
#: English adjectives dropped from the front of a kind ("electric kettle" -> "kettle")
ENGLISH_ADJECTIVES = ("electric", "smart", "digital", "portable", "mini", "automatic")
#: ways "không" is typed in chat
KHONG_FORMS = ("k", "ko", "kg")


def _has_digit(word: str) -> bool:
    return any(char.isdigit() for char in word)


def product_kind(name: str) -> str:
    """The kind of product a Vietnamese catalog name starts with: its syllables up to the brand
    (the first capitalised syllable after the first) or the first size/model token.

    "Nồi chiên không dầu Bếp Việt 5.5L" -> "Nồi chiên không dầu".
    """
    words = name.split()
    kept: list[str] = []
    for position, word in enumerate(words):
        if _has_digit(word) or (position > 0 and word[:1].isupper()):
            break
        kept.append(word)
    return " ".join(kept) or name.strip()


def english_kind(name_en: str) -> str:
    """The kind of product an English catalog name ends with: its lower-case words without sizes
    or model codes ("Bếp Việt 5.5L air fryer" -> "air fryer")."""
    words = [w for w in name_en.split() if not _has_digit(w)]
    tail: list[str] = []
    for word in reversed(words):
        if word[:1].isupper() and tail:
            break
        if not word[:1].isupper():
            tail.insert(0, word)
    return " ".join(tail)


def _initials(syllables: list[str]) -> str:
    return "".join(fold(s)[0] for s in syllables if s)


def product_forms(name: str, name_en: str | None = None, sku: str | None = None) -> list[str]:
    """Every form a customer may type for this product, most specific first (duplicates removed,
    compared without case or diacritics).

    The full name and the name without its size; the kind ("nồi chiên không dầu") and its shorter
    spoken forms ("nồi chiên"; "nồi cơm" for "nồi cơm điện"); chat spellings of "không" ("nồi
    chiên k dầu"); abbreviations by initials ("nckd", "nồi chiên kd"); each without diacritics;
    the English kind ("air fryer", "fryer", "airfryer"); the SKU.
    """
    forms: list[str] = []

    def add(form: str) -> None:
        form = " ".join(form.split())
        if len(fold(form)) >= 3 and form.lower() not in (f.lower() for f in forms):
            forms.append(form)

    lowered = " ".join(name.split()).lower()
    add(lowered)
    add(" ".join(w for w in lowered.split() if not _has_digit(w)))
    kind = product_kind(name).lower()
    syllables = kind.split()
    add(kind)
    if len(syllables) >= 4:
        add(" ".join(syllables[:2]))  # "nồi chiên không dầu" -> "nồi chiên"
        add(" ".join(syllables[:2]) + " " + _initials(syllables[2:]))  # "nồi chiên kd"
    folded_kind = fold(kind)
    for tail in DROPPABLE_TAILS:
        if folded_kind.endswith(" " + tail) and len(syllables) - len(tail.split()) >= 2:
            add(" ".join(syllables[: len(syllables) - len(tail.split())]))  # "nồi cơm điện" -> "nồi cơm"
    if "không" in syllables:
        for short in KHONG_FORMS:
            add(" ".join(short if s == "không" else s for s in syllables))
    if len(syllables) >= 3:
        add(_initials(syllables))  # "nckd", "mxst", "ncd"
    for form in list(forms):
        add(fold(form))
    if name_en:
        english = english_kind(name_en).lower()
        if english:
            add(english)
            words = english.split()
            if len(words) >= 2 and words[0] in ENGLISH_ADJECTIVES:
                add(" ".join(words[1:]))
            if len(words) == 2 and words[0] not in ENGLISH_ADJECTIVES:
                add("".join(words))  # "air fryer" -> "airfryer"
    if sku:
        add(sku.strip())
    return list(dict.fromkeys(forms))


def catalog_training_data(products: Iterable[Mapping[str, Any]]) -> TrainingData:
    """The catalog as training data: one ``product`` lookup table of every product's forms (merge it
    into the shop's data before training)."""
    elements: list[str] = []
    for product in products:
        for form in product_forms(str(product["name"]), product.get("name_en"), product.get("sku")):
            if form not in elements:
                elements.append(form)
    return TrainingData(lookups=[LookupTable(PRODUCT_ENTITY, elements)] if elements else [])


def read_catalog_file(path: str | Path) -> list[dict[str, Any]]:
    """The ``products`` list of a shop YAML file (the demo shop's format: sku, name, name_en, ...)."""
    path = Path(path)
    try:
        document = yaml_io.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise TrainingDataError(path, None, f"cannot read catalog: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise TrainingDataError(path, mark.line + 1 if mark else None, "invalid YAML in catalog") from None
    products = document.get("products") if isinstance(document, dict) else None
    if not isinstance(products, list):
        raise TrainingDataError(path, None, "a catalog needs a 'products' list")
    for index, product in enumerate(products, start=1):
        if not isinstance(product, dict) or not str(product.get("name") or "").strip():
            raise TrainingDataError(path, None, f"product #{index} needs a 'name'")
    return products


def load_training_data_with_catalogs(
    data_paths: Iterable[str | Path], catalog_paths: Iterable[str | Path] = ()
) -> TrainingData:
    """Rasa YAML training data with each shop YAML file's products merged in as the ``product``
    lookup table, as `caredesk nlu train --catalog` trains (TrainingDataError on bad input)."""
    data = load_training_data(data_paths)
    for path in catalog_paths:
        data = data.merge(catalog_training_data(read_catalog_file(path)))
    return data

"""Finding the catalog product a message is about, with the forms the NLU was trained on.

The NLU tags a ``product`` entity (lookup table generated from the catalog, or learned); the bot
still matches the catalog's own forms (``nlu.catalog.product_forms``) against the entity and the
whole message, so an answer names the right product even when the model was trained before the
product was added, and tells apart a product the shop sells from one it does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.ports import ProductView
from nlu.catalog import product_forms
from nlu.normalization import fold


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+(?:[.\-]\w+)*", fold(text)))


@dataclass(frozen=True)
class ProductMatch:
    """What a message names: the catalog products it matches (several when a form is shared, such
    as "nồi cơm" for two rice cookers), and the words it used."""

    products: tuple[ProductView, ...]
    surface: str


class CatalogIndex:
    """Every form of every product, matched as whole words without case or diacritics."""

    def __init__(self, products: Sequence[ProductView]):
        self.products = list(products)
        self._forms: dict[str, list[ProductView]] = {}
        for product in self.products:
            for form in product_forms(product.name, product.name_en, product.sku):
                owners = self._forms.setdefault(_key(form), [])
                if product not in owners:
                    owners.append(product)
        self._pattern = None
        if self._forms:
            alternatives = "|".join(re.escape(k).replace(r"\ ", r"\s+")
                                    for k in sorted(self._forms, key=len, reverse=True) if k)
            self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")

    def find(self, text: str) -> ProductMatch | None:
        """The longest catalog form in ``text``, if any."""
        if self._pattern is None or not text:
            return None
        folded = fold(text)
        best: re.Match | None = None
        for match in self._pattern.finditer(folded):
            if best is None or len(match.group(0)) > len(best.group(0)):
                best = match
        if best is None:
            return None
        owners = self._forms.get(" ".join(best.group(0).split()), [])
        return ProductMatch(tuple(owners), text[best.start():best.end()]) if owners else None


#: "shop có bán X không", "do you sell X", "có X không": the X a customer asks about when the NLU
#: tagged no product (matched on the folded text)
_ASKED_ITEM = re.compile(
    r"(?:\b(?:ban|sell|carry|stock|have|kinh\s+doanh)\b|\bco\s+(?!ban\b|kinh\s+doanh\b)(?:hang\s+|san\s+pham\s+|sp\s+)?)"
    r"\s*(?:any\s+|cai\s+|chiec\s+|may\s+cai\s+)?"
    r"(?P<item>[a-z0-9][\w\s\-.]{1,40}?)\s*"
    r"(?:\b(?:khong|ko|k|hong|hok|kh|hem|khum|ha|a|ah|ak|nhi|vay|v|ban|shop|ad|nha|nhe|not|or|at all|please|pls)\b|[?!.]|$)"
)
_NOT_AN_ITEM = {"hang", "san pham", "sp", "gi", "j", "cai gi", "nhung gi", "you", "it", "them", "the", "a", "an",
                "ban", "shop", "ship", "freeship", "khuyen mai", "giam gia", "bao hanh", "gia", "dia chi", "chi nhanh"}


def asked_item(text: str) -> str | None:
    """The words naming what a customer asks the shop to sell, when no product entity names it."""
    folded = fold(text)
    match = _ASKED_ITEM.search(folded)
    if match is None:
        return None
    item = match.group("item").strip(" -.")
    if not item or item in _NOT_AN_ITEM:
        return None
    start = match.start("item") + match.group("item").index(item)
    return text[start:start + len(item)]

"""Placeholders in canned responses (``{customer_name}``, ``{order_code}`` …) and filling them in.

A saved reply is written once for every customer; the placeholders are replaced with the
conversation's values when an agent inserts it. A value the conversation does not have leaves its
placeholder in the text, so the agent sees what is still to fill in before sending.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

#: every placeholder a canned response may use, and what it stands for (shown on the admin page)
PLACEHOLDERS = {
    "customer_name": "the customer's name",
    "order_code": "the code of the customer's latest order",
    "agent_name": "the name of the agent sending the reply",
    "shop_name": "the shop's name",
}

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def unknown_placeholders(text: str) -> list[str]:
    """The ``{names}`` in ``text`` that are not placeholders CareDesk fills in, in order, once each."""
    return list(dict.fromkeys(name for name in _PLACEHOLDER.findall(text) if name not in PLACEHOLDERS))


def fill_placeholders(text: str, values: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """The text with each placeholder that has a value replaced; also the placeholders left unfilled."""
    missing: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if name in PLACEHOLDERS and value:
            return value
        if name in PLACEHOLDERS and name not in missing:
            missing.append(name)
        return match.group(0)

    return _PLACEHOLDER.sub(replace, text), missing

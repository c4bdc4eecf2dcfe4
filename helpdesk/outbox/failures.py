"""What kind of failure a platform's send error is, so the inbox can say it in the agent's language.

The platforms explain a refused send in their own (English) words, and that text is what the outbox
stores on the message. The inbox needs a small, fixed set of kinds to translate; the words stay
available beside the sentence for whoever needs the details."""

from __future__ import annotations

import re

#: the kinds the inbox has a sentence for; anything else is "unknown"
KINDS = ("blocked", "outside_window", "too_large", "rate_limited", "unknown")

# Checked in this order: the first that matches names the kind. The phrases are the platforms' own
# (Telegram "bot was blocked by the user", Messenger "This person isn't available right now", Zalo's
# 7-day answer window as the connector words it) and the connectors' wording of size limits.
_PATTERNS = (
    ("outside_window",
     re.compile(r"messaging window|within 7 days|outside of (the )?allowed window|24[- ]hour", re.I)),
    ("blocked", re.compile(r"blocked|deactivated|forbidden|isn'?t available|not available right now|"
                           r"turned off messages|has not started|can't initiate|unreachable", re.I)),
    ("too_large",
     re.compile(r"too large|too big|entity too large|\bbytes\b.*\bat most\b|characters long", re.I)),
    ("rate_limited",
     re.compile(r"too many requests|rate limit|request limit|limit call|retry after|flood", re.I)),
)


def delivery_error_kind(reason: str | None) -> str | None:
    """The kind of a stored send error (see ``KINDS``), or None when the message did not fail."""
    if not reason:
        return None
    for kind, pattern in _PATTERNS:
        if pattern.search(reason):
            return kind
    return "unknown"

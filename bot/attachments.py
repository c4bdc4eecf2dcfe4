"""What the bot makes of what comes with a message: photos and videos as evidence, a shared
contact's phone, a shared location as an address.

The bot sees attachments as the platform described them (``connectors.base.Attachment``): the
bytes are fetched and stored by the helpdesk after the turn, so nothing here does I/O.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from connectors.base import Attachment
from nlu.components.entities import normalize_phone

if TYPE_CHECKING:
    from bot.context import TurnContext

#: what shows the problem (a photo or video of the broken product, a voice note, a PDF of the invoice)
EVIDENCE_KINDS = ("image", "video", "audio", "file")
#: kinds that say nothing by themselves: an answer acknowledges them instead of trying to read them
MEDIA_KINDS = (*EVIDENCE_KINDS, "sticker")
#: how many file names the agents' note lists before it only counts
_NAMES_IN_NOTE = 5
#: where an agent opens a stored attachment (the inbox's download route, for agents who may see the
#: conversation); the note links each piece of evidence there
AGENT_LINK = "/api/attachments/{id}"
#: how many links the note carries (the conversation lists every file all the same)
_LINKS_IN_NOTE = 10
_GEO_URI = re.compile(r"^geo:(-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)")


def coordinates(attachment: Attachment) -> tuple[float, float] | None:
    """A location's latitude and longitude, from its fields or its RFC 5870 ``geo:`` URI."""
    if attachment.latitude is not None and attachment.longitude is not None:
        return attachment.latitude, attachment.longitude
    match = _GEO_URI.match(attachment.url or "")
    return (float(match.group(1)), float(match.group(2))) if match else None


def location_text(attachment: Attachment) -> str | None:
    """A shared location as an address a person can open: the coordinates and a map link."""
    point = coordinates(attachment)
    if point is None:
        return None
    lat, lon = point
    label = f"{attachment.name} " if attachment.name else ""
    link = f"https://www.openstreetmap.org/?mlat={lat:.6f}&mlon={lon:.6f}#map=17/{lat:.6f}/{lon:.6f}"
    return f"{label}📍 {lat:.6f},{lon:.6f} {link}"


def contact_phone(attachment: Attachment) -> str | None:
    """A shared contact's phone in the same form the NLU gives a typed one (0 + digits)."""
    if attachment.kind != "contact" or not attachment.phone:
        return None
    digits = re.sub(r"\D", "", attachment.phone)
    return normalize_phone(digits) if 9 <= len(digits) <= 13 else None


def shared_values(attachments: Iterable[Attachment], entity: str) -> list[str]:
    """What the attachments give for ``entity``: ``phone`` from a contact, ``address`` from a location."""
    values: list[str] = []
    for attachment in attachments:
        value = None
        if entity == "phone":
            value = contact_phone(attachment)
        elif entity == "address" and attachment.kind == "location":
            value = location_text(attachment)
        if value and value not in values:
            values.append(value)
    return values


def evidence_in(attachments: Iterable[Attachment]) -> list[dict[str, Any]]:
    """The photos, videos, recordings and files among ``attachments``, as JSON for the dialogue state."""
    return [{"kind": a.kind, "name": a.name, **({"id": a.id} if a.id else {})}
            for a in attachments if a.kind in EVIDENCE_KINDS]


async def is_media_only(ctx: TurnContext) -> bool:
    """The message is a photo, video, file or sticker and nothing the NLU could read."""
    turn = ctx.turn
    return (not turn.payload and any(a.kind in MEDIA_KINDS for a in turn.attachments)
            and ctx.intent in (None, "nlu_fallback"))


def count_words(ctx: TurnContext, items: Sequence[dict[str, Any]], locale: str | None = None) -> str:
    """'2 ảnh, 1 video' (or '2 photos, 1 video'): how much of each kind, in ``locale``."""
    locale = locale or ctx.locale
    counts = Counter(item["kind"] for item in items)
    words = []
    for kind in EVIDENCE_KINDS:
        if counts[kind]:
            key = f"evidence_one_{kind}" if counts[kind] == 1 else f"evidence_many_{kind}"
            words.append(ctx.responses.render(key, locale, count=counts[kind]))
    return ", ".join(words)


def evidence_note(ctx: TurnContext, items: Sequence[dict[str, Any]]) -> str:
    """The agents' mark of the evidence in a handoff note, '[+ 2 ảnh: IMG_1.jpg, IMG_2.jpg]', in the
    shop's own language (the agents', not necessarily the customer's), followed by a link to each
    stored piece ('/api/attachments/<id>') so the agent who takes over opens them from the note."""
    if not items:
        return ""
    words = count_words(ctx, items, ctx.responses.default_locale)
    names = [str(item["name"]) for item in items if item.get("name")]
    if len(names) > _NAMES_IN_NOTE:
        names = [*names[:_NAMES_IN_NOTE], "…"]
    mark = f"[+ {words}: {', '.join(names)}]" if names else f"[+ {words}]"
    return " ".join([mark, *evidence_links(items)])


def evidence_links(items: Sequence[dict[str, Any]]) -> list[str]:
    """The agents' links to the evidence the helpdesk stored (items without an id have none), at most
    _LINKS_IN_NOTE, each once."""
    links = list(dict.fromkeys(AGENT_LINK.format(id=item["id"]) for item in items if item.get("id")))
    return [*links[:_LINKS_IN_NOTE], "…"] if len(links) > _LINKS_IN_NOTE else links


def with_evidence(text: str, ctx: TurnContext, items: Sequence[dict[str, Any]]) -> str:
    """``text`` followed by the evidence mark, if there is any evidence."""
    mark = evidence_note(ctx, items)
    return f"{text} {mark}".strip() if mark else text

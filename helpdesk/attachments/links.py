"""Signed, short-lived links to a file, for whoever has no agent session: a web chat visitor, and a
platform that takes files by address (Zalo Bot, web chat).

A link names the attachment, what of it (the file or its thumbnail) and when it expires, and carries
an HMAC of those with the secret key, so it cannot be altered or made up; a link made with a key of a
rotation under way (``secret_key_previous``) is still accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Sequence
from urllib.parse import urlencode

#: the link's path under this server, by what it serves
VISITOR_PATHS = {"file": "/webchat/attachments/{id}", "thumbnail": "/webchat/attachments/{id}/thumbnail"}


def _signature(secret_key: str, attachment_id: str, variant: str, expires: int) -> str:
    # The "attachment-link:" prefix keeps these MACs from being valid for any other use of the key.
    message = f"attachment-link:{attachment_id}:{variant}:{expires}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def signed_path(secret_key: str, attachment_id: str, *, variant: str = "file", ttl_s: int,
                now: float | None = None) -> str:
    """The path and query of a link to the attachment's file (or ``variant="thumbnail"``) valid for
    ``ttl_s`` seconds."""
    expires = int((time.time() if now is None else now) + ttl_s)
    query = urlencode({"expires": expires, "signature": _signature(secret_key, attachment_id, variant, expires)})
    return f"{VISITOR_PATHS[variant].format(id=attachment_id)}?{query}"


def signed_url(base_url: str, secret_key: str, attachment_id: str, *, variant: str = "file", ttl_s: int) -> str:
    """``signed_path`` under ``base_url`` (the server's public address)."""
    return base_url.rstrip("/") + signed_path(secret_key, attachment_id, variant=variant, ttl_s=ttl_s)


def link_problem(keys: Sequence[str], attachment_id: str, variant: str, expires: str | None,
                 signature: str | None, now: float | None = None) -> str | None:
    """Why a link does not grant access (None: it does)."""
    if not expires or not signature or not expires.isdigit():
        return "the link is not signed"
    if not any(hmac.compare_digest(_signature(key, attachment_id, variant, int(expires)).encode(),
                                   signature.encode()) for key in keys if key):
        return "the link's signature is not valid"
    if int(expires) < (time.time() if now is None else now):
        return "the link has expired"
    return None

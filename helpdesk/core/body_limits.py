"""How much a client may send, enforced before any route reads the body.

A pure ASGI middleware, so that the webhook edge pays for one header scan and, where the body is
scanned, one pass over its bytes; nothing is buffered here. Each request gets the byte limit of the
most specific rule for its path:

- a ``Content-Length`` over the limit is answered 413 at once, without reading a byte of the body;
- a streamed (chunked) body is counted as the route reads it, and reading stops with 413 at the
  first chunk past the limit, so at most the limit plus one chunk is ever held;
- a JSON body (and every webhook body, which connectors parse whatever its content type says) is
  scanned for its nesting as it streams past, and one nested deeper than the limit is refused with
  400, before any signature check, ``json.loads`` or pydantic recursion can meet it.

A route that needs more (a file upload) declares a ``RouteLimit`` of its own in ``body_limits``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

from starlette.exceptions import HTTPException

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KiB = 1024
MiB = 1024 * KiB

_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_OPENERS = frozenset(b"[{")


class JsonDepthScanner:
    """Tracks how deep the JSON seen so far is nested, one chunk at a time, without parsing it.

    Brackets inside strings do not count. Exact for valid JSON; for a body that is not JSON the
    verdict only needs to be safe for the parser that will refuse it, which stops at the first error
    and so never recurses further than the valid prefix this scanner counted exactly.
    """

    __slots__ = ("max_depth", "depth", "in_string", "escaped")

    def __init__(self, max_depth: int):
        self.max_depth = max_depth
        self.depth = 0
        self.in_string = False
        self.escaped = False  # the previous chunk ended inside a string on an unfinished escape

    def feed(self, chunk: bytes) -> bool:
        """Scan the next chunk; False once the document is nested deeper than ``max_depth``."""
        # Escapes only occur inside strings. Dropping every escaped backslash and escaped quote
        # leaves quotes that are all string delimiters, so splitting on them separates what is
        # inside strings from what is not, with no per-character work in Python.
        if self.escaped and chunk:
            chunk, self.escaped = chunk[1:], False
        if b"\\" in chunk:
            if (len(chunk) - len(chunk.rstrip(b"\\"))) % 2:
                # the last backslash escapes the first byte of the next chunk
                chunk, self.escaped = chunk[:-1], True
            chunk = chunk.replace(b"\\\\", b"").replace(b'\\"', b"")
        parts = chunk.split(b'"')
        outside = b"".join(parts[1::2] if self.in_string else parts[::2])
        if len(parts) % 2 == 0:
            self.in_string = not self.in_string
        opened = outside.count(b"[") + outside.count(b"{")
        if self.depth + opened <= self.max_depth:
            self.depth += opened - outside.count(b"]") - outside.count(b"}")
            return True
        depth, deepest = self.depth, self.max_depth
        for byte in outside.translate(None, _NOT_BRACKETS):
            if byte in _OPENERS:
                depth += 1
                if depth > deepest:
                    self.depth = depth
                    return False
            else:
                depth -= 1
        self.depth = depth
        return True


def json_too_deep(document: bytes | str, max_depth: int) -> bool:
    """Whether a whole JSON text is nested deeper than ``max_depth`` (checked without parsing it)."""
    if isinstance(document, str):
        document = document.encode("utf-8", "surrogatepass")
    return not JsonDepthScanner(max_depth).feed(document)


@dataclass(frozen=True)
class RouteLimit:
    """The body limit of the paths under ``path``: a prefix when it ends with ``/``, else one path
    whose ``{name}`` parts each stand for one segment. ``always_json`` scans every body on these
    paths for its nesting, whatever its content type says (webhooks, which connectors parse)."""

    path: str
    max_bytes: int
    always_json: bool = False

    def pattern(self) -> re.Pattern[str]:
        """The paths this rule covers, as a regular expression."""
        parts = re.split(r"(\{[^}/]+\})", self.path)
        body = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        return re.compile(body if self.path.endswith("/") else body + "$")


class RequestRejected(HTTPException):
    """The body is too big or too deeply nested; raised from ``receive`` while a route reads it.

    An HTTPException so that FastAPI's body parsing passes it on untouched (it turns other errors
    into a vague 400) and the app's handler answers it with the usual ``{"detail": ...}``."""


class BodyLimitMiddleware:
    """Refuses oversized and over-nested request bodies (HTTP only; web chat frames are capped by the
    server's ``ws_max_size`` and by the socket itself)."""

    def __init__(self, app: ASGIApp, *, default_bytes: int, routes: Iterable[RouteLimit] = (),
                 max_json_depth: int = 64):
        self.app = app
        self.default = RouteLimit("/", default_bytes)
        # most specific first: exact paths, then longer prefixes before shorter ones
        ordered = sorted(routes, key=lambda rule: (rule.path.endswith("/"), -len(rule.path)))
        self.rules = [(rule.pattern(), rule) for rule in ordered]
        self.max_json_depth = max_json_depth

    def rule_for(self, path: str) -> RouteLimit:
        """The limit that applies to a request path."""
        for pattern, rule in self.rules:
            if pattern.match(path):
                return rule
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.rule_for(scope["path"])
        declared: int | None = None
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = int(value) if value.isdigit() else None
            elif name == b"content-type":
                content_type = value
        if declared is not None and declared > rule.max_bytes:
            await _reject(send, 413, _too_large(rule))
            return
        scan = rule.always_json or _is_json(content_type)
        if declared is not None and not scan:
            # the server never passes on more than Content-Length bytes: nothing left to check
            await self.app(scope, receive, send)
            return
        await self._guarded(scope, receive, send, rule, scan)

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, rule: RouteLimit, scan: bool) -> None:
        scanner = JsonDepthScanner(self.max_json_depth) if scan else None
        received = 0
        refusal: RequestRejected | None = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal received, refusal
            if refusal is not None:
                raise refusal
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > rule.max_bytes:
                    refusal = RequestRejected(413, _too_large(rule))
                elif scanner is not None and not scanner.feed(chunk):
                    refusal = RequestRejected(400, f"the JSON body is nested deeper than "
                                                   f"{self.max_json_depth} levels")
                if refusal is not None:
                    raise refusal
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, guarded_receive, watched_send)
        except RequestRejected:
            if started:
                raise
        if refusal is not None and not started:
            # the route swallowed the error (or let it out): the client still gets the reason
            await _reject(send, refusal.status_code, refusal.detail)


def _is_json(content_type: bytes) -> bool:
    # FastAPI parses a body without a content type as JSON too
    if not content_type:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


def _too_large(rule: RouteLimit) -> str:
    return f"the request body is larger than the {rule.max_bytes} bytes this route accepts"


async def _reject(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

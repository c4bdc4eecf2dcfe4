"""Security headers for every HTML page the server sends.

The inbox, reports and training pages, the demo shop and the API docs are all served by this one
origin, so a page that lacked the headers (could be framed, or run injected script) would expose the
session cookie that the others guard. A page may set a policy of its own (the demo shop's inline
styles, the docs' CDN scripts); whatever it leaves out, the middleware adds.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def page_policy(host: str, *, script_src: str = "'self'", style_src: str = "'self'", img_src: str = "'self' data:",
                extra: str = "") -> str:
    """A Content-Security-Policy: this server's own files and sockets only, unless widened per source."""
    host = _HOST_UNSAFE.sub("", host)  # the Host header is the client's word: nothing that ends a directive
    policy = (f"default-src 'self'; script-src {script_src}; style-src {style_src}; img-src {img_src}; "
              f"connect-src 'self' ws://{host} wss://{host}; frame-ancestors 'none'; base-uri 'none'; "
              "form-action 'self'; object-src 'none'")
    return f"{policy}; {extra}" if extra else policy


def security_headers(host: str, policy: str | None = None) -> dict[str, str]:
    """The headers every page carries; ``policy`` replaces the default Content-Security-Policy."""
    return {"Content-Security-Policy": policy or page_policy(host), "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY", "Cache-Control": "no-store"}


_HOST_UNSAFE = re.compile(r"[^A-Za-z0-9.:\-\[\]]")
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> str:
    """CSP sources allowing exactly the inline scripts of ``html`` (and no script injected later)."""
    return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
                    for body in _INLINE_SCRIPT.findall(html))


class SecurityHeadersMiddleware:
    """Adds ``security_headers`` to each HTML response, keeping any the route set itself."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; complete the headers of an HTML answer as it starts."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if headers.get("content-type", "").startswith("text/html"):
                    host = next((value.decode("latin-1") for key, value in scope["headers"] if key == b"host"), "")
                    for name, value in security_headers(host).items():
                        if name not in headers:
                            headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)

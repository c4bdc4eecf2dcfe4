"""The inbox as an installable web app: its manifest and its service worker.

The worker lives at ``/inbox/sw.js`` and registers with the scope ``/inbox`` (the start page itself,
which the default scope ``/inbox/`` would leave out), allowed by the ``Service-Worker-Allowed`` header.
Both answers are revalidated on every load so an upgrade reaches the agents' phones at once.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from helpdesk.inbox.api import STATIC_DIR, page_language, ui_strings

router = APIRouter(tags=["inbox"])

WORKER_SCOPE = "/inbox"
THEME_COLOUR = "#0b7285"
BACKGROUND_COLOUR = "#f3f5f8"
ICONS = [
    {"src": "/inbox/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
    {"src": "/inbox/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
    {"src": "/inbox/static/icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png",
     "purpose": "maskable"},
]


def manifest(language: str) -> dict[str, Any]:
    """The web app manifest, its texts in the agent's language."""
    strings = ui_strings(language)
    return {
        "id": "/inbox",
        "name": f"CareDesk · {strings['app.inbox']}",
        "short_name": "CareDesk",
        "description": strings["app.tagline"],
        "lang": language,
        "start_url": "/inbox",
        "scope": WORKER_SCOPE,
        "display": "standalone",
        "theme_color": THEME_COLOUR,
        "background_color": BACKGROUND_COLOUR,
        "icons": ICONS,
    }


@router.get("/inbox/manifest.webmanifest", include_in_schema=False)
def read_manifest(request: Request) -> Response:
    """The manifest that makes the inbox installable on a phone's home screen."""
    return JSONResponse(manifest(page_language(request)), media_type="application/manifest+json",
                        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"})


@router.get("/inbox/sw.js", include_in_schema=False)
def read_service_worker() -> Response:
    """The service worker script, allowed to control all of /inbox (see the module's docstring)."""
    return FileResponse(STATIC_DIR / "sw.js", media_type="text/javascript; charset=utf-8",
                        headers={"Service-Worker-Allowed": WORKER_SCOPE, "Cache-Control": "no-cache",
                                 "X-Content-Type-Options": "nosniff"})

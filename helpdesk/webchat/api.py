"""Web chat routes: a visitor session, the visitor's socket, the widget script and the demo shop page."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket
from fastapi.responses import HTMLResponse

from connectors import ChannelConnector
from connectors.webchat import WebchatConnector
from helpdesk.channels.deps import ConnectorsDep, InboundEdgeDep
from helpdesk.core.deps import SettingsDep
from helpdesk.jobs.deps import JobsDep
from helpdesk.core.headers import page_policy, security_headers
from helpdesk.webchat import service
from helpdesk.webchat.schemas import WebchatSessionPublic
from helpdesk.webchat.visitor_socket import VisitorSocket

HELPDESK_DIR = Path(__file__).resolve().parents[1]
WIDGET_PATH = HELPDESK_DIR / "static" / "webchat" / "widget.js"
DEMO_PAGE_PATH = HELPDESK_DIR / "templates" / "demo_shop.html"
#: close codes the widget acts on: 4401 = get a new session, 4404 = stop trying
CLOSE_BAD_TOKEN = 4401
CLOSE_CHANNEL_OFF = 4404

router = APIRouter(tags=["webchat"])


def _webchat(connectors: Mapping[str, ChannelConnector]) -> WebchatConnector | None:
    return connectors.get(WebchatConnector.name)


@lru_cache(maxsize=8)
def _asset(path: Path, mtime_ns: int) -> tuple[bytes, str]:
    body = path.read_bytes()
    return body, f'"{hashlib.sha256(body).hexdigest()[:32]}"'


def _cached_asset(path: Path) -> tuple[bytes, str]:
    # Keyed on the modification time, so an edited file is served without a restart.
    return _asset(path, path.stat().st_mtime_ns)


@router.post("/webchat/session", response_model=WebchatSessionPublic, status_code=201,
             summary="Start a web chat visitor")
def create_session(settings: SettingsDep, connectors: ConnectorsDep,
                   response: Response) -> WebchatSessionPublic:
    """A new visitor id and its token; nothing is stored until the visitor writes."""
    if _webchat(connectors) is None:
        raise HTTPException(404, "the web chat channel is not enabled on this server")
    # The widget runs on the shop's own site, usually another origin than CareDesk. The answer is
    # a fresh anonymous identity that no cookie or credential guards, so any origin may ask.
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-store"
    return service.new_session(settings.secret_key.get_secret_value())


@router.websocket("/webchat/ws")
async def visitor_socket(websocket: WebSocket, settings: SettingsDep, connectors: ConnectorsDep,
                         inbound: InboundEdgeDep, jobs: JobsDep, token: str = "") -> None:
    """The visitor's live chat: history first, then their messages in and replies out."""
    # Accept before refusing: a close before the handshake reaches the browser only as an
    # anonymous failure, and the widget needs the code to know a new session will help.
    await websocket.accept()
    connector = _webchat(connectors)
    if connector is None:
        await websocket.close(code=CLOSE_CHANNEL_OFF, reason="web chat is not enabled")
        return
    visitor_id = service.visitor_for_token(settings.secret_key.get_secret_value(), token,
                                           [key.get_secret_value() for key in settings.secret_key_previous])
    if visitor_id is None:
        await websocket.close(code=CLOSE_BAD_TOKEN, reason="invalid or missing token")
        return
    await VisitorSocket(connector, websocket, visitor_id, inbound=inbound, jobs=jobs,
                        json_max_depth=settings.limits.json_max_depth).run()


@router.get("/webchat/widget.js", include_in_schema=False)
def widget_script(request: Request) -> Response:
    """The embeddable widget; shops include it with one script tag."""
    body, etag = _cached_asset(WIDGET_PATH)
    # Short max-age so a new widget reaches shops' pages soon; the ETag makes re-checks cheap.
    headers = {"Cache-Control": "public, max-age=300", "ETag": etag}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/", include_in_schema=False)
@router.get("/demo", include_in_schema=False)
def demo_shop(request: Request) -> HTMLResponse:
    """A sample shop page with the widget on it, to try the web chat."""
    body, _ = _cached_asset(DEMO_PAGE_PATH)
    host = request.headers.get("host", "")
    # Inline styles: the page's own, and the widget's in its shadow root; scripts still only from here.
    policy = page_policy(host, style_src="'self' 'unsafe-inline'")
    return HTMLResponse(body.decode("utf-8"), headers=security_headers(host, policy))

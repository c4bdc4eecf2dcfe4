"""Web chat routes: a visitor session, the visitor's socket, the widget script and the demo shop page."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse

from connectors import ChannelConnector
from connectors.webchat import ID_PATTERN, WebchatConnector, message_frame, scoped_message_id
from helpdesk.attachments.deps import AttachmentsDep
from helpdesk.attachments.sending import FileRefused, accept_visitor_upload
from helpdesk.channels.deps import ConnectorsDep, InboundEdgeDep
from helpdesk.channels.tasks import process_event_soon
from helpdesk.core.deps import SettingsDep
from helpdesk.core.errors import CareDeskError
from helpdesk.jobs.deps import JobsDep
from helpdesk.core.headers import page_policy, security_headers
from helpdesk.webchat import service
from helpdesk.webchat.schemas import WebchatSessionPublic, WebchatUploadPublic
from helpdesk.webchat.upload_rate import UPLOAD_RATE, UploadRate
from helpdesk.webchat.visitor_socket import VisitorSocket

log = logging.getLogger(__name__)

HELPDESK_DIR = Path(__file__).resolve().parents[1]
WIDGET_PATH = HELPDESK_DIR / "static" / "webchat" / "widget.js"
DEMO_PAGE_PATH = HELPDESK_DIR / "templates" / "demo_shop.html"
#: close codes the widget acts on: 4401 = get a new session, 4404 = stop trying
CLOSE_BAD_TOKEN = 4401
CLOSE_CHANNEL_OFF = 4404

router = APIRouter(tags=["webchat"])


def _upload_rate(request: Request) -> UploadRate:
    """The app's count of visitors' uploads: shared through Redis when the app has it."""
    state = request.app.state
    limiter = getattr(state, "webchat_upload_rate", None)
    if limiter is None:
        limiter = state.webchat_upload_rate = UploadRate(state.wiring.redis)
    return limiter


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
                         inbound: InboundEdgeDep, jobs: JobsDep, files: AttachmentsDep, token: str = "") -> None:
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
                        json_max_depth=settings.limits.json_max_depth, files=files).run()


@router.post("/webchat/attachments", response_model=WebchatUploadPublic, status_code=201,
             summary="A visitor sends a file",
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                 "type": "object", "required": ["file"], "properties": {
                     "file": {"type": "string", "format": "binary"},
                     "text": {"type": "string", "maxLength": 2000},
                     "id": {"type": "string", "pattern": ID_PATTERN.pattern}}}}}}},
             responses={401: {"description": "Missing or invalid visitor token"},
                        429: {"description": "Too many files in a short time"},
                        413: {"description": "The file is over the server's limit"},
                        422: {"description": "No file, an empty or damaged one, or a bad field"}})
async def upload_attachment(request: Request, settings: SettingsDep, connectors: ConnectorsDep,
                            inbound: InboundEdgeDep, jobs: JobsDep, files: AttachmentsDep,
                            token: str = "") -> JSONResponse:
    """A visitor's file (a photo from the phone's camera, a document), as a message of their chat.

    ``POST /webchat/attachments?token=<visitor token>``, ``multipart/form-data`` with ``file``, an
    optional ``text`` (the caption) and an optional ``id`` (the widget's own message id, 8-64 of
    ``[A-Za-z0-9_-]``, as on the socket; a resend with the same id is not stored twice). The file is
    checked (the server's cap: 413; empty or a damaged image: 422) and stored, then the message goes
    through the same pipeline as one typed on the socket (the bot or an agent answers on the socket).

    Answer 201: ``{"id": <message id>, "text", "duplicate": false, "attachments": [{"id", "kind",
    "mime_type", "size", "name", "url", "thumbnail_url", "status", ...}]}``, ``url`` and
    ``thumbnail_url`` being signed links valid for ``CAREDESK_STORAGE__LINK_TTL_S`` (absolute when
    ``CAREDESK_STORAGE__PUBLIC_BASE_URL`` is set, else paths on this server). The visitor's other
    tabs get the bubble as a socket frame ``{"type": "message", "author": "customer", "attachments":
    [...]}``; an agent's file arrives the same way with ``"author": "agent"`` (see
    ``connectors.webchat.message_frame``).
    """
    # The widget runs on the shop's own site: every answer, refusals included, is readable there.
    cross_origin = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
    if _webchat(connectors) is None:
        return JSONResponse({"detail": "the web chat channel is not enabled on this server"}, status_code=404,
                            headers=cross_origin)
    visitor_id = service.visitor_for_token(settings.secret_key.get_secret_value(), token,
                                           [key.get_secret_value() for key in settings.secret_key_previous])
    if visitor_id is None:
        return JSONResponse({"detail": "invalid or missing visitor token"}, status_code=401, headers=cross_origin)
    if not await _upload_rate(request).allow(visitor_id):
        return JSONResponse({"detail": "too many files, please wait a minute"}, status_code=429,
                            headers={**cross_origin, "Retry-After": str(int(UPLOAD_RATE[1]))})
    try:
        body = await _store_upload(request, visitor_id, connectors, inbound, jobs, files)
    except CareDeskError as exc:
        return JSONResponse({"detail": exc.reason}, status_code=exc.status, headers=cross_origin)
    return JSONResponse(body.model_dump(mode="json"), status_code=201, headers=cross_origin)


async def _store_upload(request: Request, visitor_id: str, connectors, inbound, jobs, files) -> WebchatUploadPublic:
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise FileRefused("send the file as multipart/form-data, in a field named 'file'", 415)
    async with request.form(max_files=1, max_fields=4) as form:
        upload, text, client_id = form.get("file"), form.get("text") or "", form.get("id") or uuid.uuid4().hex
        if upload is None or isinstance(upload, str):
            raise FileRefused("the form needs a file in its 'file' field", 422)
        if not isinstance(text, str) or len(text) > 2000:
            raise FileRefused("text (the caption) must be at most 2000 characters", 422)
        if not isinstance(client_id, str) or not ID_PATTERN.match(client_id):
            raise FileRefused("id must be 8-64 letters, digits, '-' or '_'", 422)
        data = await upload.read()
        message, row = await accept_visitor_upload(
            files, visitor_id=visitor_id, external_id=scoped_message_id(visitor_id, client_id), data=data,
            name=upload.filename, text=text.strip())
    stored = await inbound.store([message], {"visitor_id": visitor_id, "upload": row.id})
    shown = [files.visitor_view(row).model_dump()]
    if stored:
        [(event_id, channel, sender_id, to_process)] = stored
        if to_process:
            process_event_soon(jobs, event_id, channel, sender_id, typing_off=True)
        try:  # the visitor's other tabs show it too (they also get it from the history later)
            await _webchat(connectors).hub.publish(visitor_id, message_frame(
                client_id, message.text, author="customer", attachments=shown))
        except Exception as exc:
            log.warning("could not show a web chat upload to the visitor's other tabs: %s", exc)
    return WebchatUploadPublic(id=client_id, text=message.text, duplicate=not stored, attachments=shown)


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

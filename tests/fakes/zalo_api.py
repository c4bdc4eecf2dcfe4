"""Loopback fakes of Zalo's two messaging platforms, for tests.

:class:`FakeZaloOA` speaks the Official Account Open API: ``POST /v3.0/oa/message/cs`` authenticated by a
bare ``access_token`` header and answering ``{"error": 0, "message": "Success", "data": {...}}`` or a
non-zero ``error`` with HTTP 200, and ``POST /v4/oa/access_token``, which trades the current single-use
refresh token for a new pair and kills the old one. :class:`FakeZaloBotAPI` speaks the Telegram-like Zalo
Bot Platform (``POST /bot<token>/<method>``, ``{"ok": ..., "result"/"error_code"/"description"}``).

Both record what they receive, fail on demand and run in their own thread with their own event loop, so
sync tests, async tests and a server in yet another thread can all talk to them.

    with FakeZaloOA() as zalo:
        config = ZaloOAConfig(..., api_base=zalo.base_url, oauth_base=zalo.base_url)
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

MESSAGE_PATH = "/v3.0/oa/message/cs"
PROMOTION_PATH = "/v3.0/oa/message/promotion"
TOKEN_PATH = "/v4/oa/access_token"
#: the OA's upload endpoints: what each takes, up to what size, and what it answers with
UPLOADS: dict[str, tuple[frozenset[str], int, str]] = {
    "image": (frozenset({"jpg", "jpeg", "png"}), 1024 * 1024, "attachment_id"),
    "gif": (frozenset({"gif"}), 5 * 1024 * 1024, "attachment_id"),
    "file": (frozenset({"pdf", "doc", "docx"}), 5 * 1024 * 1024, "token"),
}
#: the OA's documented limit; the Bot Platform publishes none, so its fake assumes the same
MAX_TEXT_LENGTH = 2000
MAX_BUTTONS = 5
#: Zalo's own wording for the OA errors tests ask for most
OA_ERROR_MESSAGES = {
    -32: "Your application reached limit call api",
    -200: "Send message failed",
    -201: "{field} is invalid!",
    -213: "User has not followed OA",
    -216: "Access token is invalid",
    -220: "access_token is expired or removed",
    -230: "User has not interacted with the OA in the past 7 days",
    -232: "User has not interacted, or last interaction expired",
    -234: "This message cannot be sent at night (10:00PM - 6:00AM)",
}
#: Zalo documents -14002 for a wrong app id but publishes no table of its other -14xxx OAuth codes;
#: this stands in for "invalid refresh token" (CareDesk does not branch on it)
OAUTH_INVALID_APP_ID = -14002
OAUTH_INVALID_GRANT = -14014
#: the Bot Platform does not publish its error descriptions; these follow Telegram's style
BOT_DESCRIPTIONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden: the user has blocked the bot",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


def sign_zalo(app_id: str, body: bytes | str, timestamp: str, oa_secret_key: str) -> str:
    """The ``X-ZEvent-Signature`` Zalo sends with ``body``: ``mac=`` and a plain SHA-256, not an HMAC."""
    raw = body.encode() if isinstance(body, str) else body
    signed = app_id.encode() + raw + str(timestamp).encode() + oa_secret_key.encode()
    return "mac=" + hashlib.sha256(signed).hexdigest()


@dataclass(frozen=True)
class ZaloCall:
    """One request as the fake received it; ``endpoint`` is "message", "token" or a Bot API method."""

    endpoint: str
    headers: dict[str, str]
    body: dict[str, Any]
    token: str = ""


class _LoopbackServer:
    """An aiohttp app on a free 127.0.0.1 port, served from a thread with its own event loop."""

    thread_name = "fake-zalo"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[ZaloCall] = []
        self._delays: dict[str, deque[float]] = defaultdict(deque)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping: asyncio.Event | None = None
        #: files served like Zalo's CDN (photo-stal-*.zdn.vn, dl.zalo.me), by path: (bytes, type, status)
        self._cdn: dict[str, tuple[bytes, str, int]] = {}

    def _routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def add_cdn_file(self, data: bytes, *, name: str = "9d1f2e3c4b5a.jpg", content_type: str = "image/jpeg") -> str:
        """Serve ``data`` at a CDN-like address, as the ``payload.url`` of a customer's attachment."""
        with self._lock:
            path = f"jpg/{len(self._cdn):04d}{secrets.token_hex(6)}/{name}"
            self._cdn[path] = (data, content_type, 200)
        return f"{self.base_url}/cdn/{path}"

    def expire_cdn_file(self, url: str, *, status: int = 404) -> None:
        """Make a CDN address answer ``status`` from now on, as an expired link does."""
        path = url.split("/cdn/", 1)[1]
        with self._lock:
            data, content_type, _ = self._cdn[path]
            self._cdn[path] = (data, content_type, status)

    async def _cdn_file(self, request: web.Request) -> web.Response:
        with self._lock:
            found = self._cdn.get(request.match_info["path"])
        if found is None or found[2] != 200:
            return web.Response(status=found[2] if found else 404, text="Not Found")
        return web.Response(body=found[0], content_type=found[1])

    @property
    def base_url(self) -> str:
        """Where to point the connector's ``api_base`` (and, for the OA, ``oauth_base``)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self):
        """Serve in a background thread; returns once the server accepts connections."""
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        ready = threading.Event()
        problems: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve(sock))
            except BaseException as error:  # noqa: BLE001 - handed to the starting thread
                problems.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=serve, name=self.thread_name, daemon=True)
        self._thread.start()
        ready.wait(10)
        if problems:
            self._thread = None
            raise RuntimeError(f"{type(self).__name__} could not start") from problems[0]
        return self

    async def _serve(self, sock: socket.socket) -> None:
        self._stopping = asyncio.Event()
        # uploads up to Zalo's 5 MB limit and a little more, so a fake itself can refuse what is over
        app = web.Application(client_max_size=6 * 1024 * 1024)
        app.router.add_get("/cdn/{path:.+}", self._cdn_file)
        self._routes(app)
        # a delayed answer still pending must not hold stop() for aiohttp's default 60 s
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._thread is None or self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = self._loop = self._runner = None
        self._port = None

    async def _shutdown(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
        # an answer still held by delay_next would otherwise be destroyed mid-sleep with the loop
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests read -----------------------------------------------------------------------------

    @property
    def calls(self) -> list[ZaloCall]:
        """Every request received, in order, including refused and failed ones."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, endpoint: str) -> list[ZaloCall]:
        """Requests to one endpoint ("message", "token", or a Bot API method, case-insensitive)."""
        return [call for call in self.calls if call.endpoint.lower() == endpoint.lower()]

    def delay_next(self, seconds: float, endpoint: str = "message", *, times: int = 1) -> None:
        """Hold the next ``times`` answers of ``endpoint`` for ``seconds`` (the request goes through)."""
        with self._lock:
            self._delays[endpoint.lower()].extend([seconds] * times)

    async def wait_for_calls(self, endpoint: str, count: int, timeout: float = 5.0) -> list[ZaloCall]:
        """Wait until ``count`` requests to ``endpoint`` arrived; AssertionError with what did otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls_to(endpoint)
            if len(calls) >= count:
                return calls
            if time.monotonic() >= deadline:
                recorded = [(call.endpoint, call.body) for call in self.calls]
                raise AssertionError(
                    f"expected {count} {endpoint} call(s) within {timeout}s, got {len(calls)}; "
                    f"recorded: {recorded!r}"
                )
            await asyncio.sleep(0.01)

    def _record(self, call: ZaloCall) -> None:
        with self._lock:
            self._calls.append(call)

    async def _maybe_delay(self, endpoint: str) -> None:
        with self._lock:
            delays = self._delays.get(endpoint.lower())
            delay = delays.popleft() if delays else 0.0
        if delay and self._stopping is not None:
            # wakes early when the fake stops, so a held answer does not hold up the test's teardown
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except TimeoutError:
                pass


@dataclass(frozen=True)
class ZaloUpload:
    """A file the OA uploaded (``/v2.0/oa/upload/<kind>``): exactly what arrived, and what it was given."""

    kind: str
    data: bytes
    filename: str
    content_type: str | None
    reference: str


@dataclass
class _HttpFailure:
    status: int
    body: str


class FakeZaloOA(_LoopbackServer):
    """A real HTTP server on 127.0.0.1 answering like Zalo's OA message and OAuth v4 token endpoints."""

    thread_name = "fake-zalo-oa"

    def __init__(
        self,
        *,
        app_id: str = "3608465248940903967",
        app_secret_key: str = "app-secret-key-for-tests",
        access_token: str = "oa-access-token-1",
        refresh_token: str = "oa-refresh-token-1",
        oa_id: str = "388613280878808645",
    ):
        super().__init__()
        self.app_id = app_id
        self.app_secret_key = app_secret_key
        self.oa_id = oa_id
        self._access_token = access_token
        self._refresh_token = refresh_token
        self._access_token_expired = False
        self._refreshes = 0
        self._generation = itertools.count(2)
        self._sent: list[dict[str, Any]] = []
        self._errors: deque[tuple[int, str]] = deque()
        self._http_failures: dict[str, deque[_HttpFailure]] = defaultdict(deque)
        self._uploads: list[ZaloUpload] = []
        self._promotions: list[dict[str, Any]] = []

    def _routes(self, app: web.Application) -> None:
        app.router.add_post(MESSAGE_PATH, self._message)
        app.router.add_post(PROMOTION_PATH, self._promotion)
        app.router.add_post(TOKEN_PATH, self._token)
        app.router.add_post("/v2.0/oa/upload/{kind}", self._upload)

    # -- what tests read and steer -------------------------------------------------------------------

    @property
    def access_token(self) -> str:
        """The access token the fake currently accepts."""
        with self._lock:
            return self._access_token

    @property
    def refresh_token(self) -> str:
        """The one refresh token the fake will currently trade for a new pair."""
        with self._lock:
            return self._refresh_token

    @property
    def refresh_count(self) -> int:
        """How many refreshes succeeded."""
        with self._lock:
            return self._refreshes

    def sent_messages(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies of messages Zalo accepted, optionally only those addressed to one user id."""
        with self._lock:
            sent = list(self._sent)
        if user_id is None:
            return sent
        return [body for body in sent if str(body.get("recipient", {}).get("user_id")) == str(user_id)]

    def promotions_sent(self, user_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies of promotion messages Zalo accepted, optionally only those to one user id."""
        with self._lock:
            sent = list(self._promotions)
        return [body for body in sent if user_id is None or str(body["recipient"].get("user_id")) == str(user_id)]

    def uploads(self) -> list[ZaloUpload]:
        """Files Zalo accepted at its upload endpoints, in order."""
        with self._lock:
            return list(self._uploads)

    async def _upload(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        form = await request.post()
        part = form.get("file")
        self._record(ZaloCall(f"upload/{kind}", _plain_headers(request),
                              {"filename": getattr(part, "filename", None)}))
        await self._maybe_delay(f"upload/{kind}")
        if (failure := self._next_http_failure(f"upload/{kind}")) is not None:
            return web.Response(status=failure.status, text=failure.body, content_type="text/html")
        if (refused := self._refusal(request)) is not None:
            return refused
        if kind not in UPLOADS or not isinstance(part, web.FileField):
            return _oa_error(-201, "file is invalid!")
        extensions, limit, answer_field = UPLOADS[kind]
        data = part.file.read()
        if part.filename.lower().rpartition(".")[2] not in extensions:
            return _oa_error(-210, f"File type is not supported, only {', '.join(sorted(extensions))}")
        if len(data) > limit:
            return _oa_error(-210, f"File size exceeds the limit of {limit // (1024 * 1024)}MB")
        if not data:
            return _oa_error(-201, "file is invalid!")
        reference = secrets.token_urlsafe(24)
        with self._lock:
            self._uploads.append(ZaloUpload(kind, data, part.filename, part.content_type, reference))
        return web.json_response({"data": {answer_field: reference}, "error": 0, "message": "Success"})

    def expire_access_token(self) -> None:
        """Make the current access token stop working, as after its 25 hours: sends answer -216."""
        with self._lock:
            self._access_token_expired = True

    def fail_next(self, error_code: int, *, times: int = 1, message: str | None = None) -> None:
        """Answer the next ``times`` message sends or uploads with Zalo's ``error_code`` (HTTP 200, as Zalo
        does)."""
        text = message or OA_ERROR_MESSAGES.get(error_code, f"Error {error_code}").format(field="message")
        with self._lock:
            self._errors.extend([(error_code, text)] * times)

    def fail_next_http(
        self, status: int, *, endpoint: str = "message", times: int = 1, body: str | None = None
    ) -> None:
        """Answer the next ``times`` requests to ``endpoint`` with a bare HTTP error, as a proxy would."""
        page = body if body is not None else f"<html><body><h1>{status}</h1></body></html>"
        with self._lock:
            self._http_failures[endpoint.lower()].extend([_HttpFailure(status, page)] * times)

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _json_call(self, request: web.Request, endpoint: str) -> Any:
        """The request's JSON body (None when it is not JSON), recorded as a call to ``endpoint``."""
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(ZaloCall(endpoint, _plain_headers(request), body if isinstance(body, dict) else {}))
        return body

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The OA API's answer when the call may not go on: the next scheduled error, else -216 for a
        wrong or expired access token; None when it may."""
        with self._lock:
            scheduled = self._errors.popleft() if self._errors else None
            token_ok = request.headers.get("access_token") == self._access_token and not self._access_token_expired
        if scheduled is not None:
            return _oa_error(*scheduled)
        if not token_ok:
            return _oa_error(-216, OA_ERROR_MESSAGES[-216])
        return None

    async def _message(self, request: web.Request) -> web.Response:
        body = await self._json_call(request, "message")
        await self._maybe_delay("message")
        if (failure := self._next_http_failure("message")) is not None:
            return web.Response(status=failure.status, text=failure.body, content_type="text/html")
        if (refused := self._refusal(request)) is not None:
            return refused
        if not isinstance(body, dict):
            return _oa_error(-201, "body is invalid!")
        invalid = _invalid_field(body, self._known_references())
        if invalid is not None:
            return _oa_error(-201, f"{invalid} is invalid!")
        message_id = secrets.token_hex(10)
        with self._lock:
            self._sent.append(body)
        data: dict[str, Any] = {"message_id": message_id}
        if "user_id" in body["recipient"]:
            data["user_id"] = str(body["recipient"]["user_id"])
        return web.json_response({"data": data, "error": 0, "message": "Success"})

    async def _promotion(self, request: web.Request) -> web.Response:
        """``/v3.0/oa/message/promotion``: a promotion template (header, text) to a follower's user id."""
        body = await self._json_call(request, "promotion")
        if (refused := self._refusal(request)) is not None:
            return refused
        recipient = body.get("recipient") if isinstance(body, dict) else None
        if not isinstance(recipient, dict) or not recipient.get("user_id"):
            return _oa_error(-201, "recipient is invalid!")
        payload = ((body.get("message") or {}).get("attachment") or {}).get("payload") or {}
        elements = payload.get("elements")
        if payload.get("template_type") != "promotion" or not isinstance(elements, list) or not any(
                isinstance(element, dict) and element.get("type") == "text" and element.get("content")
                for element in elements):
            return _oa_error(-201, "template is invalid!")
        with self._lock:
            self._promotions.append(body)
        return web.json_response({"data": {"message_id": secrets.token_hex(10), "user_id": str(recipient["user_id"])},
                                  "error": 0, "message": "Success"})

    async def _token(self, request: web.Request) -> web.Response:
        form = {key: str(value) for key, value in (await request.post()).items()}
        self._record(ZaloCall("token", _plain_headers(request), form))
        await self._maybe_delay("token")
        if (failure := self._next_http_failure("token")) is not None:
            return web.Response(status=failure.status, text=failure.body, content_type="text/html")
        if form.get("app_id") != self.app_id:
            return _oauth_error(OAUTH_INVALID_APP_ID, "Invalid appId", "app_id is not valid")
        with self._lock:
            secret_ok = request.headers.get("secret_key") == self.app_secret_key
            grant_ok = (
                form.get("grant_type") == "refresh_token" and form.get("refresh_token") == self._refresh_token
            )
            if secret_ok and grant_ok:
                generation = next(self._generation)
                # the old refresh token dies the moment the new pair exists
                self._access_token = f"oa-access-token-{generation}"
                self._refresh_token = f"oa-refresh-token-{generation}"
                self._access_token_expired = False
                self._refreshes += 1
                issued = {"access_token": self._access_token, "refresh_token": self._refresh_token}
        if not secret_ok:
            return _oauth_error(OAUTH_INVALID_GRANT, "Invalid secret key", "secret_key is not valid")
        if not grant_ok:
            return _oauth_error(OAUTH_INVALID_GRANT, "Invalid refresh token", "refresh_token is invalid")
        # Zalo sends expires_in as a string
        return web.json_response({**issued, "expires_in": "90000"})

    def _known_references(self) -> set[str]:
        with self._lock:
            return {upload.reference for upload in self._uploads}

    def _next_http_failure(self, endpoint: str) -> _HttpFailure | None:
        with self._lock:
            failures = self._http_failures.get(endpoint)
            return failures.popleft() if failures else None


def _plain_headers(request: web.Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}


def _oa_error(code: int, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message})


def _oauth_error(code: int, name: str, description: str) -> web.Response:
    return web.json_response(
        {"error": code, "error_name": name, "error_reason": description, "error_description": description}
    )


def _invalid_field(body: dict[str, Any], uploaded: set[str] = frozenset()) -> str | None:  # type: ignore[assignment]
    """The field Zalo would name in a -201 answer, or None when the request is well formed
    (``uploaded``: the attachment ids and file tokens the upload endpoints handed out)."""
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not (recipient.get("user_id") or recipient.get("message_id")):
        return "recipient"
    message = body.get("message")
    if not isinstance(message, dict) or not (message.get("text") or message.get("attachment")):
        return "message"
    if len(str(message.get("text", ""))) > MAX_TEXT_LENGTH:
        return "text"
    attachment = message.get("attachment")
    if attachment is not None:
        if not isinstance(attachment, dict):
            return "attachment"
        payload = attachment.get("payload")
        if attachment.get("type") == "file":
            return None if isinstance(payload, dict) and payload.get("token") in uploaded else "token"
        if isinstance(payload, dict) and payload.get("template_type") == "media":
            elements = payload.get("elements")
            if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
                return "elements"
            element = elements[0]
            if element.get("media_type") not in ("image", "gif") or element.get("attachment_id") not in uploaded:
                return "attachment_id"
            if element["media_type"] == "gif" and not (element.get("width") and element.get("height")):
                return "width"
            return None
        buttons = payload.get("buttons") if isinstance(payload, dict) else None
        if attachment.get("type") != "template" or not isinstance(buttons, list) or not buttons:
            return "attachment"
        if len(buttons) > MAX_BUTTONS:
            return "buttons"
        for button in buttons:
            if not isinstance(button, dict) or not button.get("title") or not button.get("type"):
                return "buttons"
    return None


@dataclass
class _BotFailure:
    error_code: int
    description: str
    retry_after: int | None


@dataclass(frozen=True)
class FetchedPhoto:
    """A photo the bot sent by address: what the fake, like Zalo, fetched from there."""

    chat_id: str
    url: str
    data: bytes
    content_type: str | None
    caption: str | None


@dataclass
class _BotState:
    sent: list[dict[str, Any]] = field(default_factory=list)
    photos: list[FetchedPhoto] = field(default_factory=list)
    failures: dict[str, deque[_BotFailure]] = field(default_factory=lambda: defaultdict(deque))
    webhook: dict[str, Any] = field(default_factory=dict)


class FakeZaloBotAPI(_LoopbackServer):
    """A real HTTP server on 127.0.0.1 answering like the Zalo Bot Platform API for one bot token."""

    thread_name = "fake-zalo-bot-api"

    def __init__(self, token: str = "1234567890:zalo-bot-test-token"):
        super().__init__()
        self.token = token
        self._state = _BotState()
        self._handlers = {
            "getme": ("getMe", self._get_me),
            "sendmessage": ("sendMessage", self._send_message),
            "sendphoto": ("sendPhoto", self._send_photo),
            "sendchataction": ("sendChatAction", self._send_chat_action),
            "setwebhook": ("setWebhook", self._set_webhook),
            "deletewebhook": ("deleteWebhook", self._delete_webhook),
            "getwebhookinfo": ("getWebhookInfo", self._get_webhook_info),
        }

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._handle)

    # -- what tests read and steer -------------------------------------------------------------------

    def sent_messages(self, chat_id: str | None = None) -> list[dict[str, Any]]:
        """Parameters of sendMessage calls that succeeded, optionally for one chat."""
        with self._lock:
            sent = list(self._state.sent)
        if chat_id is None:
            return sent
        return [params for params in sent if str(params.get("chat_id")) == str(chat_id)]

    def sent_photos(self, chat_id: str | None = None) -> list[FetchedPhoto]:
        """Photos sendPhoto delivered, with the bytes fetched from their address, optionally for one chat."""
        with self._lock:
            photos = list(self._state.photos)
        return [photo for photo in photos if chat_id is None or photo.chat_id == str(chat_id)]

    @property
    def webhook(self) -> dict[str, Any]:
        """Parameters of the last successful setWebhook (empty after deleteWebhook)."""
        with self._lock:
            return dict(self._state.webhook)

    def fail_next(
        self,
        method: str,
        error_code: int,
        *,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error_code": ...}``."""
        text = description or BOT_DESCRIPTIONS.get(error_code, f"Error {error_code}")
        with self._lock:
            self._state.failures[method.lower()].extend([_BotFailure(error_code, text, retry_after)] * times)

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        given_method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        known = self._handlers.get(given_method.lower())
        method = known[0] if known else given_method
        self._record(ZaloCall(method, _plain_headers(request), params, token))
        if token != self.token:
            return _bot_error(401, BOT_DESCRIPTIONS[401])
        if known is None:
            return _bot_error(404, BOT_DESCRIPTIONS[404])
        await self._maybe_delay(method)
        with self._lock:
            failures = self._state.failures.get(method.lower())
            failure = failures.popleft() if failures else None
        if failure is not None:
            return _bot_error(failure.error_code, failure.description, retry_after=failure.retry_after)
        try:
            result = known[1](params)
            if asyncio.iscoroutine(result):
                result = await result
        except _BadRequest as problem:
            return _bot_error(400, f"Bad Request: {problem}")
        return web.json_response({"ok": True, "result": result})

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        bot_id = self.token.partition(":")[0]
        return {"id": bot_id, "account_name": f"bot.{bot_id}", "account_type": "BASIC",
                "can_join_groups": False}

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        if not params.get("chat_id"):
            raise _BadRequest("chat_id is empty")
        if not params.get("text"):
            raise _BadRequest("text is empty")
        if len(str(params["text"])) > MAX_TEXT_LENGTH:
            raise _BadRequest("text is too long")
        with self._lock:
            self._state.sent.append(params)
        return {"message_id": secrets.token_hex(16), "date": int(time.time() * 1000)}

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        if not params.get("chat_id"):
            raise _BadRequest("chat_id is empty")
        if params.get("action") != "typing":
            raise _BadRequest("action must be typing")
        return True

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id, url, caption = params.get("chat_id"), params.get("photo"), params.get("caption")
        if not chat_id:
            raise _BadRequest("chat_id is empty")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise _BadRequest("photo must be an image URL")
        if caption is not None and len(str(caption)) > MAX_TEXT_LENGTH:
            raise _BadRequest("caption is too long")
        # Zalo fetches the photo from the address itself; so does the fake, to record the real bytes
        try:
            async with aiohttp.ClientSession() as session, session.get(url) as response:
                data = await response.read()
                content_type = response.headers.get("Content-Type")
                status = response.status
        except aiohttp.ClientError as error:
            raise _BadRequest(f"cannot download photo from url ({type(error).__name__})") from error
        if status != 200 or not data:
            raise _BadRequest(f"cannot download photo from url (HTTP {status})")
        with self._lock:
            self._state.photos.append(FetchedPhoto(str(chat_id), url, data, content_type,
                                                   None if caption is None else str(caption)))
        return {"message_id": secrets.token_hex(16), "date": int(time.time() * 1000)}

    def _set_webhook(self, params: dict[str, Any]) -> dict[str, Any]:
        if not str(params.get("url", "")).startswith("https://"):
            raise _BadRequest("url must be an HTTPS URL")
        if not 8 <= len(str(params.get("secret_token", ""))) <= 256:
            raise _BadRequest("secret_token must be 8 to 256 characters")
        with self._lock:
            self._state.webhook = params
        return {"url": params["url"], "updated_at": int(time.time() * 1000)}

    def _delete_webhook(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._state.webhook = {}
        return {"url": "", "updated_at": int(time.time() * 1000)}

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": self.webhook.get("url", ""), "updated_at": int(time.time() * 1000)}


class _BadRequest(Exception):
    """A request the Bot API would answer with 400."""


def _bot_error(code: int, description: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=code if 400 <= code < 600 else 400)


def dumps(payload: dict[str, Any]) -> bytes:
    """A webhook body as Zalo sends it: compact UTF-8 JSON, Vietnamese left unescaped."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

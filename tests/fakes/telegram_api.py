"""A loopback Telegram Bot API server for tests.

It speaks the wire format (``POST /bot<token>/<method>``, JSON, form-urlencoded or multipart bodies,
``{"ok": ..., "result"/"error_code"/"description"}`` answers), records what it receives and fails on
demand with Telegram's real error bodies. It runs in its own thread with its own event loop, so sync
tests, async tests and a uvicorn server in yet another thread can all talk to it.

    with FakeTelegramAPI(token="123456:TEST") as fake:
        bot = Bot(fake.token, session=AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url)))
"""

from __future__ import annotations

import asyncio
import random
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

#: parameters Telegram types as JSON-serialised objects when sent in a form body
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "entities",
        "caption_entities",
        "allowed_updates",
        "reply_parameters",
        "link_preview_options",
        "media",
        "results",
        "commands",
        "scope",
    }
)
INT_PARAMS = frozenset(
    {"message_id", "message_thread_id", "cache_time", "max_connections", "offset", "limit", "timeout"}
)
BOOL_PARAMS = frozenset(
    {
        "show_alert",
        "drop_pending_updates",
        "disable_notification",
        "protect_content",
        "allow_sending_without_reply",
        "disable_web_page_preview",
    }
)
DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: chat not found",
    401: "Unauthorized",
    403: "Forbidden: bot was blocked by the user",
    404: "Not Found",
    409: "Conflict: terminated by other getUpdates request",
    429: "Too Many Requests: retry after {retry_after}",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
#: the cloud Bot API's getFile limit ("file is too big" past it)
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024
#: upload limits of the cloud Bot API: photos 10 MB, other files 50 MB
MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_UPLOAD_BYTES = 50 * 1024 * 1024
#: sending methods that take a file, and the name of the field carrying it
FILE_METHODS = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVideo": "video",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendAnimation": "animation",
}
MAX_CALLBACK_DATA_BYTES = 64


@dataclass(frozen=True)
class RecordedCall:
    """One request the fake received, with its parameters decoded as Telegram would read them."""

    method: str
    params: dict[str, Any]
    token: str = ""
    #: time.perf_counter() when the request arrived (for end-to-end latency benchmarks)
    at: float = field(default_factory=time.perf_counter)


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None
    raw_body: str | None


@dataclass
class _State:
    calls: list[RecordedCall] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failures: dict[str, deque[_Failure]] = field(default_factory=lambda: defaultdict(deque))
    delays: dict[str, deque[float]] = field(default_factory=lambda: defaultdict(deque))
    webhook: dict[str, Any] = field(default_factory=dict)
    next_message_id: int = 1
    chaos: dict[str, float] = field(default_factory=dict)
    chaos_random: random.Random = field(default_factory=lambda: random.Random(0))
    sent_files: list[SentFile] = field(default_factory=list)


@dataclass(frozen=True)
class StoredFile:
    """A file the fake serves through getFile and /file/bot<token>/<file_path>."""

    file_id: str
    data: bytes
    file_path: str
    #: what getFile reports as file_size (None: Telegram left it out)
    announced_size: int | None
    expired: bool = False


@dataclass(frozen=True)
class SentFile:
    """A file a bot uploaded with sendPhoto, sendDocument, …: exactly what arrived."""

    method: str
    chat_id: Any
    data: bytes
    filename: str
    content_type: str | None
    caption: str | None
    params: dict[str, Any]


class FakeTelegramAPI:
    """A real HTTP server on 127.0.0.1 answering like the Telegram Bot API for one bot token."""

    def __init__(self, token: str = "123456:TEST", *, bot_username: str = "caredesk_test_bot"):
        self.token = token
        self.bot_user = {
            "id": int(token.partition(":")[0]) if token.partition(":")[0].isdigit() else 1,
            "is_bot": True,
            "first_name": "CareDesk Test Bot",
            "username": bot_username,
        }
        self._lock = threading.Lock()
        self._state = _State()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._handlers = {
            "getme": ("getMe", self._get_me),
            "sendmessage": ("sendMessage", self._send_message),
            "answercallbackquery": ("answerCallbackQuery", self._answer_callback_query),
            "setwebhook": ("setWebhook", self._set_webhook),
            "deletewebhook": ("deleteWebhook", self._delete_webhook),
            "getwebhookinfo": ("getWebhookInfo", self._get_webhook_info),
            "sendchataction": ("sendChatAction", self._send_chat_action),
            "getfile": ("getFile", self._get_file),
        }
        for method in FILE_METHODS:
            self._handlers[method.lower()] = (method, self._send_file_method(method))
        #: files served by getFile, by file_id; they outlive reset() like a real bot's files do
        self._files: dict[str, StoredFile] = {}

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where to point ``TelegramAPIServer.from_base``."""
        if self._port is None:
            raise RuntimeError("FakeTelegramAPI is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self) -> FakeTelegramAPI:
        """Serve on a free loopback port in a background thread; returns once it accepts connections."""
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

        self._thread = threading.Thread(target=serve, name="fake-telegram-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if problems:
            self._thread = None
            raise RuntimeError("FakeTelegramAPI could not start") from problems[0]
        return self

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._download)
        # a delayed answer still pending must not hold stop() for aiohttp's default 60 s
        self._runner = web.AppRunner(app, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        """Stop serving and join the thread."""
        if self._thread is None or self._loop is None:
            return
        loop, runner = self._loop, self._runner
        if runner is not None:
            asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._thread = self._loop = self._runner = None
        self._port = None

    def __enter__(self) -> FakeTelegramAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests read and steer -------------------------------------------------------------------

    @property
    def calls(self) -> list[RecordedCall]:
        """Every request received, in order, including refused and failed ones."""
        with self._lock:
            return list(self._state.calls)

    def calls_to(self, method: str) -> list[RecordedCall]:
        """Requests of one method (Telegram method names are case-insensitive)."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def sent_messages(self, chat_id: int | str | None = None) -> list[dict[str, Any]]:
        """Parameters of sendMessage calls that succeeded, optionally for one chat."""
        with self._lock:
            sent = list(self._state.sent)
        if chat_id is None:
            return sent
        return [params for params in sent if str(params.get("chat_id")) == str(chat_id)]

    def add_file(self, data: bytes, *, file_path: str = "photos/file_0.jpg", file_id: str | None = None,
                 announce_size: bool = True, announced_size: int | None = None) -> str:
        """Serve ``data`` as a file a customer sent; returns its file_id for an update to carry.

        getFile reports ``announced_size`` (default: the real length; none with ``announce_size=False``).
        """
        with self._lock:
            file_id = file_id or f"AgACAgUAAxkBAAI{len(self._files):04d}fake"
            size = announced_size if announced_size is not None else len(data) if announce_size else None
            self._files[file_id] = StoredFile(file_id, data, f"{file_path}", size)
        return file_id

    def expire_file(self, file_id: str) -> None:
        """Make the download URL of ``file_id`` answer 404 (getFile still answers with its path)."""
        with self._lock:
            stored = self._files[file_id]
            self._files[file_id] = StoredFile(stored.file_id, stored.data, stored.file_path,
                                              stored.announced_size, expired=True)

    def sent_files(self, chat_id: int | str | None = None) -> list[SentFile]:
        """Files uploaded by successful send* calls, in order, optionally for one chat."""
        with self._lock:
            sent = list(self._state.sent_files)
        return [item for item in sent if chat_id is None or str(item.chat_id) == str(chat_id)]

    @property
    def webhook(self) -> dict[str, Any]:
        """Parameters of the last successful setWebhook (empty after deleteWebhook)."""
        with self._lock:
            return dict(self._state.webhook)

    def fail_next(
        self,
        method: str,
        status: int,
        *,
        description: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
        raw_body: str | None = None,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with Telegram's error body (or ``raw_body``)."""
        if status == 429 and retry_after is None:
            retry_after = 1  # Telegram always says how long to wait
        text = description or DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        failure = _Failure(status, text.format(retry_after=retry_after), retry_after, raw_body)
        with self._lock:
            self._state.failures[method.lower()].extend([failure] * times)

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Hold the next ``times`` answers to ``method`` for ``seconds`` (the call still goes through)."""
        with self._lock:
            self._state.delays[method.lower()].extend([seconds] * times)

    def chaos(self, *, server_errors: float = 0.0, rate_limits: float = 0.0, seed: int = 0) -> None:
        """Fail that share of sendMessage calls at random: 5xx, and 429 with retry_after 1 (for load tests)."""
        with self._lock:
            self._state.chaos = {"server_errors": server_errors, "rate_limits": rate_limits}
            self._state.chaos_random = random.Random(seed)

    def _chaos_failure(self) -> _Failure | None:
        draw = self._state.chaos_random.random()
        if draw < self._state.chaos["server_errors"]:
            return _Failure(502, "Bad Gateway", None, None)
        if draw < self._state.chaos["server_errors"] + self._state.chaos["rate_limits"]:
            return _Failure(429, "Too Many Requests: retry after 1", 1, None)
        return None

    def reset(self) -> None:
        """Forget calls, sent messages, pending failures and delays (message ids keep counting)."""
        with self._lock:
            next_id = self._state.next_message_id
            self._state = _State(next_message_id=next_id)

    async def wait_for_calls(self, method: str, count: int, timeout: float = 5.0) -> list[RecordedCall]:
        """Wait until ``count`` calls of ``method`` arrived; AssertionError with what did otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls_to(method)
            if len(calls) >= count:
                return calls
            if time.monotonic() >= deadline:
                raise AssertionError(self._shortfall(method, count, timeout))
            await asyncio.sleep(0.01)

    def wait_for_calls_sync(self, method: str, count: int, timeout: float = 5.0) -> list[RecordedCall]:
        """Blocking twin of :meth:`wait_for_calls` for sync tests."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls_to(method)
            if len(calls) >= count:
                return calls
            if time.monotonic() >= deadline:
                raise AssertionError(self._shortfall(method, count, timeout))
            time.sleep(0.01)

    def _shortfall(self, method: str, count: int, timeout: float) -> str:
        recorded = [(call.method, call.params) for call in self.calls]
        return (
            f"expected {count} {method} call(s) within {timeout}s, "
            f"got {len(self.calls_to(method))}; recorded: {recorded!r}"
        )

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        given_method = request.match_info["method"]
        params = await _read_params(request)
        known = self._handlers.get(given_method.lower())
        method = known[0] if known else given_method
        with self._lock:
            self._state.calls.append(RecordedCall(method, params, token))

        if token != self.token:
            return _error(401, "Unauthorized")
        if known is None:
            return _error(404, "Not Found")
        with self._lock:
            delays = self._state.delays.get(method.lower())
            delay = delays.popleft() if delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            failures = self._state.failures.get(method.lower())
            failure = failures.popleft() if failures else None
            if failure is None and method == "sendMessage" and self._state.chaos:
                failure = self._chaos_failure()
        if failure is not None:
            if failure.raw_body is not None:
                return web.Response(status=failure.status, text=failure.raw_body, content_type="text/html")
            return _error(failure.status, failure.description, retry_after=failure.retry_after)
        try:
            result = known[1](params)
        except _BadRequest as problem:
            return _error(400, f"Bad Request: {problem}")
        except _EntityTooLarge:
            return _error(413, "Request Entity Too Large")
        return web.json_response({"ok": True, "result": result})

    # -- methods -------------------------------------------------------------------------------------

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False}

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        text = params.get("text")
        if chat_id in (None, ""):
            raise _BadRequest("chat_id is empty")
        if not text:
            raise _BadRequest("message text is empty")
        if len(str(text)) > MAX_TEXT_LENGTH:
            raise _BadRequest("message is too long")
        markup = params.get("reply_markup")
        if isinstance(markup, dict):
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    if len(str(button.get("callback_data", "")).encode()) > MAX_CALLBACK_DATA_BYTES:
                        raise _BadRequest("BUTTON_DATA_INVALID")
        with self._lock:
            message_id = self._state.next_message_id
            self._state.next_message_id += 1
            self._state.sent.append(params)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self.bot_user,
            "chat": _chat(chat_id),
            "date": int(time.time()),
            "text": str(text),
        }
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _get_file(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            stored = self._files.get(str(params.get("file_id", "")))
        if stored is None:
            raise _BadRequest("invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_BYTES or (stored.announced_size or 0) > MAX_DOWNLOAD_BYTES:
            raise _BadRequest("file is too big")
        found: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_id[-8:],
                                 "file_path": stored.file_path}
        if stored.announced_size is not None:
            found["file_size"] = stored.announced_size
        return found

    async def _download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        path = request.match_info["file_path"]
        with self._lock:
            stored = next((item for item in self._files.values() if item.file_path == path), None)
        if stored is None or stored.expired:
            return _error(404, "Not Found")
        # the real file server sends no useful type, and no Content-Length for a chunked body
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(stored.data), 64 * 1024):
            await response.write(stored.data[start : start + 64 * 1024])
        await response.write_eof()
        return response

    def _send_file_method(self, method: str) -> Any:
        field_name = FILE_METHODS[method]

        def send(params: dict[str, Any]) -> dict[str, Any]:
            chat_id = params.get("chat_id")
            upload = params.get(field_name)
            if chat_id in (None, ""):
                raise _BadRequest("chat_id is empty")
            if not isinstance(upload, dict) or "data" not in upload:
                raise _BadRequest(f"there is no {field_name} in the request")
            caption = params.get("caption")
            if caption is not None and len(str(caption)) > MAX_CAPTION_LENGTH:
                raise _BadRequest("message caption is too long")
            limit = MAX_PHOTO_BYTES if method == "sendPhoto" else MAX_UPLOAD_BYTES
            if upload["size"] > limit:
                raise _EntityTooLarge()
            with self._lock:
                message_id = self._state.next_message_id
                self._state.next_message_id += 1
                self._state.sent_files.append(SentFile(method, chat_id, upload["data"], upload["filename"],
                                                       upload["content_type"], caption, params))
            message: dict[str, Any] = {"message_id": message_id, "from": self.bot_user, "chat": _chat(chat_id),
                                       "date": int(time.time())}
            if caption:
                message["caption"] = str(caption)
            return message

        return send

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise _BadRequest("query is too old and response timeout expired or query ID is invalid")
        return True

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        if not params.get("url"):
            raise _BadRequest("bad webhook: An HTTPS URL must be provided for webhook")
        with self._lock:
            self._state.webhook = params
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self._state.webhook = {}
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        webhook = self.webhook
        info: dict[str, Any] = {
            "url": webhook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": 0,
        }
        if webhook.get("allowed_updates"):
            info["allowed_updates"] = webhook["allowed_updates"]
        return info

    def _send_chat_action(self, params: dict[str, Any]) -> bool:
        if not params.get("action"):
            raise _BadRequest("action is empty")
        return True


class _BadRequest(Exception):
    """A request Telegram would answer with 400."""


class _EntityTooLarge(Exception):
    """An upload over the Bot API's size limit (Telegram answers 413)."""


def _error(status: int, description: str, *, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


def _chat(chat_id: Any) -> dict[str, Any]:
    if isinstance(chat_id, int):
        return {"id": chat_id, "type": "private" if chat_id > 0 else "group"}
    # "@channelname": Telegram resolves it; a stable made-up id is enough here
    return {"id": -1001000000000 - abs(hash(chat_id)) % 1000, "type": "channel", "username": str(chat_id)[1:]}


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Decode any body Telegram accepts into typed parameters, the same whatever the encoding."""
    raw: dict[str, Any] = dict(request.query)
    content_type = request.content_type
    if content_type == "application/json":
        body = await request.json() if request.can_read_body else {}
        if isinstance(body, dict):
            raw.update(body)
    elif content_type == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if part is None or part.name is None:
                continue
            data = await part.read()
            if part.filename is not None:
                raw[part.name] = {"filename": part.filename, "size": len(data), "data": bytes(data),
                                  "content_type": part.headers.get("Content-Type")}
            else:
                raw[part.name] = data.decode(part.get_charset(default="utf-8"))
    elif request.can_read_body:
        raw.update(await request.post())
    # a file may travel in a part of its own, named by "attach://<part>" in the parameter (aiogram does so)
    for key, value in list(raw.items()):
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in raw:
            raw[key] = raw.pop(value[9:])
    return {key: _typed(key, value) for key, value in raw.items()}


def _typed(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in JSON_PARAMS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if key == "chat_id" or key in INT_PARAMS:
        # chat_id is "Integer or String": "@channelname" stays a string
        try:
            return int(value)
        except ValueError:
            return value
    if key in BOOL_PARAMS:
        return value.lower() in ("true", "1")
    return value

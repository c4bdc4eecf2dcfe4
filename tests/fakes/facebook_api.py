"""A loopback Messenger Send API (Graph API) server for tests.

It speaks the wire format (``POST /<version>/me/messages`` with the Page access token as
``?access_token=`` or ``Authorization: Bearer``, a JSON or form body, ``{"recipient_id", "message_id"}``
or Graph's ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`` answers), records
what it receives and fails on demand with Facebook's real error bodies. It runs in its own thread with
its own event loop, so sync tests, async tests and a uvicorn server in yet another thread can all use it.

    with FakeGraphAPI(page_access_token="EAAtest") as fake:
        config = FacebookConfig(page_access_token="EAAtest", app_secret="s", graph_api_base=fake.base_url)

:func:`sign` makes the ``X-Hub-Signature-256`` header Facebook puts on webhooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

API_VERSION = "v21.0"
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
MESSAGE_TAGS = frozenset(
    {"HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK"}
)
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
QUICK_REPLY_TYPES = frozenset({"text", "user_phone_number", "user_email"})
MAX_TEXT_LENGTH = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_PAYLOAD = 1000
#: the Messenger Platform takes attachments up to 25 MB
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
ATTACHMENT_TYPES = frozenset({"image", "video", "audio", "file", "template"})

#: what Facebook says for the errors tests provoke most, with the type it reports them under
DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred.", "OAuthException"),
    2: ("An unexpected error has occurred. Please retry your request later.", "OAuthException"),
    4: ("(#4) Application request limit reached", "OAuthException"),
    10: ("(#10) This message is sent outside of allowed window.", "OAuthException"),
    17: ("(#17) User request limit reached", "OAuthException"),
    32: ("(#32) Page request limit reached", "OAuthException"),
    100: ("(#100) Invalid parameter", "OAuthException"),
    190: ("Invalid OAuth access token - Cannot parse access token", "OAuthException"),
    200: ("(#200) The user hasn't authorized the app to perform this action", "OAuthException"),
    551: ("(#551) This person isn't available right now.", "OAuthException"),
    613: ("(#613) Calls to this api have exceeded the rate limit.", "OAuthException"),
}


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` value Facebook sends with a webhook ``body``."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class GraphCall:
    """One request the fake received: path, decoded JSON body, the token it carried and the query."""

    method: str
    path: str
    body: dict[str, Any]
    token: str | None
    query: dict[str, str]


@dataclass(frozen=True)
class UploadedFile:
    """A file the Page sent with the Send API's multipart ``filedata``: exactly what arrived."""

    psid: str
    attachment_type: str
    data: bytes
    filename: str
    content_type: str | None
    message_id: str


@dataclass
class _Failure:
    status: int
    code: int | None
    subcode: int | None
    message: str | None
    retry_after: float | None
    raw_body: str | None


@dataclass
class _State:
    calls: list[GraphCall] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    failures: deque[_Failure | None] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    uploads: list[UploadedFile] = field(default_factory=list)


class FakeGraphAPI:
    """A real HTTP server on 127.0.0.1 answering the Messenger Send API for one Page access token."""

    def __init__(
        self,
        page_access_token: str = "EAAG-test-page-token",
        *,
        page_id: str = "104857600123456",
        app_secret: str | None = None,
    ):
        self.page_access_token = page_access_token
        self.page_id = page_id
        #: when set, requests must carry the matching appsecret_proof ("Require App Secret" apps)
        self.app_secret = app_secret
        self._lock = threading.Lock()
        self._state = _State()
        self._message_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        #: files served like Messenger's CDN (scontent…fbcdn.net), by path: (bytes, type, status)
        self._cdn: dict[str, tuple[bytes, str, int]] = {}
        self._cdn_ids = itertools.count(468123456)

    # -- lifecycle -----------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Graph API base with its version, for ``FacebookConfig.graph_api_base``."""
        if self._port is None:
            raise RuntimeError("FakeGraphAPI is not started")
        return f"http://127.0.0.1:{self._port}/{API_VERSION}"

    def start(self) -> FakeGraphAPI:
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

        self._thread = threading.Thread(target=serve, name="fake-graph-api", daemon=True)
        self._thread.start()
        ready.wait(10)
        if problems:
            self._thread = None
            raise RuntimeError("FakeGraphAPI could not start") from problems[0]
        return self

    async def _serve(self, sock: socket.socket) -> None:
        # uploads up to Messenger's 25 MB and a little more, so the fake itself can refuse what is over
        app = web.Application(client_max_size=MAX_ATTACHMENT_BYTES + 1024 * 1024)
        app.router.add_get("/cdn/{path:.+}", self._cdn_file)
        # the Send API answers on /me/messages and on /<page id>/messages alike
        app.router.add_route("*", "/{version}/{node}/messages", self._handle)
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

    def __enter__(self) -> FakeGraphAPI:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests read and steer -------------------------------------------------------------------

    @property
    def calls(self) -> list[GraphCall]:
        """Every request received, in order, including refused and failed ones."""
        with self._lock:
            return list(self._state.calls)

    def sent_messages(self, psid: str | None = None) -> list[dict[str, Any]]:
        """Bodies of Send API calls that succeeded with a message, optionally to one PSID."""
        with self._lock:
            sent = list(self._state.sent)
        sent = [body for body in sent if "message" in body]
        if psid is None:
            return sent
        return [body for body in sent if str(body["recipient"].get("id")) == str(psid)]

    def add_cdn_file(self, data: bytes, *, name: str = "photo.jpg", content_type: str = "image/jpeg") -> str:
        """Serve ``data`` at a CDN-like address, as the ``payload.url`` of a customer's attachment."""
        number = next(self._cdn_ids)
        path = f"v/t1.15752-9/{number}_1234567890123456_{name}"
        with self._lock:
            self._cdn[path] = (data, content_type, 200)
        return f"http://127.0.0.1:{self._port}/cdn/{path}?_nc_cat=1&oh=00_AYC&oe=6770A1B2"

    def expire_cdn_file(self, url: str, *, status: int = 404) -> None:
        """Make a CDN address answer ``status`` from now on, as an expired Messenger link does."""
        path = url.split("/cdn/", 1)[1].split("?", 1)[0]
        with self._lock:
            data, content_type, _ = self._cdn[path]
            self._cdn[path] = (data, content_type, status)

    def uploaded_files(self, psid: str | None = None) -> list[UploadedFile]:
        """Files sent with ``filedata`` that Messenger accepted, in order, optionally to one PSID."""
        with self._lock:
            uploads = list(self._state.uploads)
        return [upload for upload in uploads if psid is None or upload.psid == str(psid)]

    async def _cdn_file(self, request: web.Request) -> web.Response:
        with self._lock:
            found = self._cdn.get(request.match_info["path"])
        if found is None or found[2] != 200:
            return web.Response(status=found[2] if found else 404, text="URL signature expired")
        return web.Response(body=found[0], content_type=found[1])

    def fail_next(
        self,
        status: int,
        *,
        code: int | None = None,
        subcode: int | None = None,
        message: str | None = None,
        retry_after: float | None = None,
        times: int = 1,
        raw_body: str | None = None,
        after: int = 0,
    ) -> None:
        """Answer the next ``times`` calls (past the next ``after`` ones, which go through) with Graph's
        error body, or ``raw_body`` as a proxy would."""
        if code is None and raw_body is None:
            raise ValueError("fail_next needs Facebook's error code, or a raw_body to answer instead")
        failure = _Failure(status, code, subcode, message, retry_after, raw_body)
        with self._lock:
            self._state.failures.extend([None] * after + [failure] * times)

    def delay_next(self, seconds: float, *, times: int = 1) -> None:
        """Hold the next ``times`` answers for ``seconds`` (the call still goes through)."""
        with self._lock:
            self._state.delays.extend([seconds] * times)

    def reset(self) -> None:
        """Forget calls, sent messages, pending failures and delays (message ids keep counting)."""
        with self._lock:
            self._state = _State()

    async def wait_for_calls(self, count: int, timeout: float = 5.0) -> list[GraphCall]:
        """Wait until ``count`` calls arrived; AssertionError with what did otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls
            if len(calls) >= count:
                return calls
            if time.monotonic() >= deadline:
                raise AssertionError(self._shortfall(count, timeout))
            await asyncio.sleep(0.01)

    def wait_for_calls_sync(self, count: int, timeout: float = 5.0) -> list[GraphCall]:
        """Blocking twin of :meth:`wait_for_calls` for sync tests."""
        deadline = time.monotonic() + timeout
        while True:
            calls = self.calls
            if len(calls) >= count:
                return calls
            if time.monotonic() >= deadline:
                raise AssertionError(self._shortfall(count, timeout))
            time.sleep(0.01)

    def _shortfall(self, count: int, timeout: float) -> str:
        recorded = [(call.path, call.body) for call in self.calls]
        return f"expected {count} call(s) within {timeout}s, got {len(recorded)}; recorded: {recorded!r}"

    # -- HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        body, unreadable = await _read_body(request)
        token = _token(request)
        with self._lock:
            self._state.calls.append(
                GraphCall(request.method, request.path, body, token, dict(request.query))
            )

        if token != self.page_access_token:
            return _error(400, 190)
        if self.app_secret is not None:
            proof = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            given = request.query.get("appsecret_proof", "")
            if not hmac.compare_digest(proof, given):
                return _error(400, 100, message="Invalid appsecret_proof provided in the API argument",
                              error_type="GraphMethodException")
        node = request.match_info["node"]
        if request.method != "POST" or node not in ("me", self.page_id):
            return _error(400, 100, message=f"(#100) Unsupported {request.method} request.",
                          error_type="GraphMethodException")
        with self._lock:
            delay = self._state.delays.popleft() if self._state.delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            failure = self._state.failures.popleft() if self._state.failures else None
        if failure is not None and failure.raw_body is not None:
            return web.Response(status=failure.status, text=failure.raw_body, content_type="text/html")
        if failure is not None and failure.code is not None:
            return _error(failure.status, failure.code, subcode=failure.subcode, message=failure.message,
                          retry_after=failure.retry_after)
        if unreadable:
            return _error(400, 100, message="(#100) Invalid JSON in the request body")
        problem = _invalid(body)
        if problem is not None:
            return _error(400, 100, message=f"(#100) {problem}")
        upload = body.pop("filedata", None)
        problem = _invalid_upload(body, upload)
        if problem is not None:
            return _error(400, 100, subcode=problem[1], message=f"(#100) {problem[0]}")
        recipient_id = str(body["recipient"].get("id", ""))
        message_id = f"m_fake{next(self._message_ids):012d}"
        with self._lock:
            self._state.sent.append(body)
            if upload is not None:
                self._state.uploads.append(UploadedFile(recipient_id, body["message"]["attachment"]["type"],
                                                        upload["data"], upload["filename"],
                                                        upload["content_type"], message_id))
        if "sender_action" in body:
            return web.json_response({"recipient_id": recipient_id})
        if upload is not None:
            return web.json_response({"recipient_id": recipient_id, "message_id": message_id,
                                      "attachment_id": str(next(self._cdn_ids))})
        return web.json_response({"recipient_id": recipient_id, "message_id": message_id})


def _invalid(body: dict[str, Any]) -> str | None:
    """What Facebook would reject in a Send API body, or None."""
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not (recipient.get("id") or recipient.get("user_ref")):
        return "param recipient[id] must be non-empty"
    has_message, has_action = "message" in body, "sender_action" in body
    if has_message == has_action:
        return "Exactly one of message or sender_action must be provided"
    if has_action:
        if body["sender_action"] not in SENDER_ACTIONS:
            return f"param sender_action must be one of {sorted(SENDER_ACTIONS)}"
        return None
    messaging_type = body.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        return f"param messaging_type must be one of {sorted(MESSAGING_TYPES)}"
    tag = body.get("tag")
    if messaging_type == "MESSAGE_TAG" and tag not in MESSAGE_TAGS:
        return "param tag must be a valid message tag when messaging_type is MESSAGE_TAG"
    if messaging_type != "MESSAGE_TAG" and tag is not None:
        return "param tag is only allowed when messaging_type is MESSAGE_TAG"
    message = body["message"]
    if not isinstance(message, dict):
        return "param message must be an object"
    text, attachment = message.get("text"), message.get("attachment")
    if not text and not attachment:
        return "param message must have text or attachment"
    if text is not None and (not isinstance(text, str) or len(text) > MAX_TEXT_LENGTH):
        return f"param message[text] must be a UTF-8 string of at most {MAX_TEXT_LENGTH} characters"
    quick_replies = message.get("quick_replies")
    if quick_replies is not None:
        if not isinstance(quick_replies, list) or not 0 < len(quick_replies) <= MAX_QUICK_REPLIES:
            return f"param message[quick_replies] must have 1 to {MAX_QUICK_REPLIES} elements"
        for index, quick_reply in enumerate(quick_replies):
            where = f"message[quick_replies][{index}]"
            if not isinstance(quick_reply, dict) or quick_reply.get("content_type") not in QUICK_REPLY_TYPES:
                return f"param {where}[content_type] is invalid"
            if quick_reply["content_type"] == "text":
                if not quick_reply.get("title"):
                    return f"param {where}[title] must be non-empty"
                payload = quick_reply.get("payload")
                if payload in (None, "") or len(str(payload)) > MAX_QUICK_REPLY_PAYLOAD:
                    return f"param {where}[payload] must be 1 to {MAX_QUICK_REPLY_PAYLOAD} characters"
    return None


def _invalid_upload(body: dict[str, Any], upload: dict[str, Any] | None) -> tuple[str, int | None] | None:
    """What Facebook would reject in an attachment (and its error_subcode), or None."""
    attachment = body.get("message", {}).get("attachment")
    if attachment is None:
        return None if upload is None else ("filedata was sent without a message attachment", None)
    if not isinstance(attachment, dict) or attachment.get("type") not in ATTACHMENT_TYPES:
        return f"param message[attachment][type] must be one of {sorted(ATTACHMENT_TYPES)}", None
    payload = attachment.get("payload")
    if attachment["type"] == "template":
        return None
    if not isinstance(payload, dict):
        return "param message[attachment][payload] must be an object", None
    if upload is None and not payload.get("url") and not payload.get("attachment_id"):
        return "param message[attachment][payload] needs a url, an attachment_id or filedata", None
    if upload is not None and len(upload["data"]) > MAX_ATTACHMENT_BYTES:
        return "Attachment size exceeds allowable limit", 2018294
    if upload is not None and not upload["data"]:
        return "Upload attachment failure.", 2018047
    return None


def _error(
    status: int,
    code: int,
    *,
    subcode: int | None = None,
    message: str | None = None,
    error_type: str | None = None,
    retry_after: float | None = None,
) -> web.Response:
    default_message, default_type = DEFAULT_ERRORS.get(code, (f"(#{code}) Error", "OAuthException"))
    error: dict[str, Any] = {
        "message": message or default_message,
        "type": error_type or default_type,
        "code": code,
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    error["fbtrace_id"] = "AbCdEfGhIjKlMnO"
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response({"error": error}, status=status, headers=headers)


def _token(request: web.Request) -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer ") or authorization.lower().startswith("oauth "):
        return authorization.split(" ", 1)[1].strip()
    return request.query.get("access_token")


async def _read_body(request: web.Request) -> tuple[dict[str, Any], bool]:
    """The body as JSON (Graph also takes form fields whose values are JSON); ``True`` if unreadable."""
    if not request.can_read_body:
        return {}, False
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            return {}, True
        return (body, False) if isinstance(body, dict) else ({}, True)
    form = await request.post()
    decoded: dict[str, Any] = {}
    for key, value in form.items():
        if isinstance(value, web.FileField):
            decoded[key] = {"data": value.file.read(), "filename": value.filename,
                            "content_type": value.content_type}
        elif isinstance(value, str):
            try:
                decoded[key] = json.loads(value) if value[:1] in ("{", "[") else value
            except ValueError:
                return {}, True
    return decoded, False

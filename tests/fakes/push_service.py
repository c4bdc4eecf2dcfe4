"""A loopback Web Push service (what FCM or Mozilla's autopush are to a browser), and a browser's half.

    with FakePushService() as push:
        browser = PushBrowser.new(push.subscription_url("lan-phone"))
        ... POST browser.subscription_json() to /api/push/subscriptions, make something notify ...
        [received] = push.wait_for(1)
        payload = browser.decrypt(received.body)     # the JSON the service worker would read
        claims = received.vapid_claims(public_key)   # the JWT checked with the server's public key

It speaks the protocol's server side: ``POST /push/<token>`` with ``Content-Encoding: aes128gcm``, a
``TTL`` and ``Authorization: vapid t=<JWT>, k=<public key>`` (RFC 8030, 8291, 8292); it checks the
JWT's ES256 signature against the ``k`` it came with and answers 201 Created, or what it was told to
(``answer(token, 410)``: the subscription is gone; ``answer(token, 500, times=2)``: a passing outage).
Every request is recorded, accepted or not. It runs in its own thread.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_vapid(header: str) -> tuple[str, str]:
    """``vapid t=<jwt>, k=<key>`` → (jwt, key); ValueError if it is not that."""
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"not a vapid Authorization: {header[:40]!r}")
    params = {}
    for part in rest.split(","):
        name, _, value = part.strip().partition("=")
        params[name] = value
    if "t" not in params or "k" not in params:
        raise ValueError("vapid Authorization without t= and k=")
    return params["t"], params["k"]


def verify_jwt(token: str, public_key: str) -> dict[str, Any]:
    """The claims of an ES256 JWT whose signature checks with ``public_key`` (raw P-256, base64url)."""
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(b64url_decode(header_b64))
    if header.get("alg") != "ES256":
        raise ValueError(f"JWT alg {header.get('alg')!r}, not ES256")
    signature = b64url_decode(signature_b64)
    if len(signature) != 64:
        raise ValueError("an ES256 signature is 64 bytes")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(public_key))
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    return json.loads(b64url_decode(claims_b64))


@dataclass(frozen=True)
class ReceivedPush:
    """One push request as the service received it."""

    token: str
    headers: dict[str, str]
    body: bytes
    status: int  # what the service answered

    def vapid(self) -> tuple[str, str]:
        """(JWT, public key) of its Authorization header."""
        return parse_vapid(self.headers.get("authorization", ""))

    def vapid_claims(self) -> dict[str, Any]:
        """The JWT's claims, its signature checked against the key it came with."""
        token, key = self.vapid()
        return verify_jwt(token, key)


@dataclass
class PushBrowser:
    """A browser's push subscription: its own P-256 key pair and auth secret, made here."""

    endpoint: str
    private_key: ec.EllipticCurvePrivateKey
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @classmethod
    def new(cls, endpoint: str) -> PushBrowser:
        """A fresh subscription for ``endpoint``."""
        return cls(endpoint, ec.generate_private_key(ec.SECP256R1()))

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(serialization.Encoding.X962,
                                                         serialization.PublicFormat.UncompressedPoint)
        return b64url(raw)

    def subscription_json(self) -> dict[str, Any]:
        """What ``PushSubscription.toJSON()`` gives the page."""
        return {"endpoint": self.endpoint, "expirationTime": None,
                "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth_secret)}}

    def decrypt(self, body: bytes) -> dict[str, Any]:
        """The payload the service worker would read (aes128gcm, RFC 8291), as JSON."""
        plain = http_ece.decrypt(body, private_key=self.private_key, auth_secret=self.auth_secret,
                                 version="aes128gcm")
        return json.loads(plain)


class FakePushService:
    """Accepts Web Push requests on loopback, records them, answers 201 or what it is told."""

    def __init__(self) -> None:
        self.received: list[ReceivedPush] = []
        #: token -> [status, times left (None: for ever)]
        self._answers: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def subscription_url(self, token: str) -> str:
        """The endpoint of one browser's subscription."""
        return f"{self.base_url}/push/{token}"

    def answer(self, token: str, status: int, times: int | None = None) -> None:
        """Answer pushes to ``token`` with ``status`` (the next ``times`` of them, or all)."""
        with self._lock:
            self._answers[token] = [status, times]

    def for_token(self, token: str) -> list[ReceivedPush]:
        with self._lock:
            return [push for push in self.received if push.token == token]

    def wait_for(self, count: int, token: str | None = None, timeout: float = 10.0) -> list[ReceivedPush]:
        """Wait until ``count`` pushes (to ``token``, or any) arrived; them."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                pushes = [push for push in self.received if token is None or push.token == token]
            if len(pushes) >= count:
                return pushes
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(pushes)} push(es) arrived, not {count}")
            time.sleep(0.02)

    def _status_for(self, token: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            told = self._answers.get(token)
            if told is not None:
                status, times = told
                if times is not None:
                    told[1] = times - 1
                    if told[1] <= 0:
                        del self._answers[token]
                return status
        # The protocol's own checks: an encrypted body, a TTL, and a VAPID JWT signed by its key.
        if headers.get("content-encoding") != "aes128gcm" or "ttl" not in headers or not body:
            return 400
        try:
            token_jwt, key = parse_vapid(headers.get("authorization", ""))
            claims = verify_jwt(token_jwt, key)
        except (ValueError, InvalidSignature, KeyError):
            return 401
        if claims.get("aud") != self.base_url or int(claims.get("exp", 0)) < time.time():
            return 403
        return 201

    def __enter__(self) -> FakePushService:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (the http.server's name)
                if not self.path.startswith("/push/"):
                    self._reply(404)
                    return
                token = self.path[len("/push/"):]
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = service._status_for(token, headers, body)
                with service._lock:
                    service.received.append(ReceivedPush(token, headers, body, status))
                self._reply(status)

            def _reply(self, status: int) -> None:
                self.send_response(status)
                if status == 201:
                    self.send_header("Location", f"{service.base_url}/messages/{len(service.received)}")
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

"""A loopback HTTP file host for attachment tests: a platform CDN that serves files by URL (what
Messenger's ``payload.url`` points at), and an upload endpoint standing for a platform's file API.

    with FileHost() as host:
        url = host.serve("photo.jpg", jpeg_bytes, "image/jpeg")   # GET url -> the bytes
        host.fail("gone.jpg", 404)                                # GET -> 404
        host.refuse_uploads(400, "file type not allowed")         # POST /upload -> 400

Uploads (``POST /upload`` with the file as the body and ``X-File-Name``, ``X-Kind``, ``X-Caption``,
``X-Recipient`` headers) are recorded in ``uploads``. It runs in its own thread, so the app under
test, in-process or in a server thread, reaches it over real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Upload:
    """One file a client uploaded."""

    recipient: str
    kind: str
    name: str
    mime_type: str
    caption: str
    data: bytes


class FileHost:
    """Serves files by path and records uploads; can fail either on demand."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        self.failures: dict[str, int] = {}
        self.uploads: list[Upload] = []
        self.refusal: tuple[int, str] | None = None
        self.requests: list[str] = []
        #: seconds each file GET waits before answering (a slow CDN)
        self.delay_s = 0.0
        #: file GETs being answered now, and the most there ever were at once (how many downloads a
        #: client runs in parallel)
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def serve(self, name: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve ``data`` at ``/files/<name>``; its URL."""
        with self._lock:
            self.files[name] = (data, content_type)
        return f"{self.base_url}/files/{name}"

    def fail(self, name: str, status: int) -> str:
        """Answer ``/files/<name>`` with ``status``; its URL."""
        with self._lock:
            self.failures[name] = status
        return f"{self.base_url}/files/{name}"

    def refuse_uploads(self, status: int, reason: str) -> None:
        """Answer every upload with ``status`` and ``{"error": reason}``."""
        self.refusal = (status, reason)

    def __enter__(self) -> FileHost:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                name = unquote(self.path.split("?", 1)[0].removeprefix("/files/"))
                with host._lock:
                    host.requests.append(name)
                    failure = host.failures.get(name)
                    found = host.files.get(name)
                    host.in_flight += 1
                    host.most_in_flight = max(host.most_in_flight, host.in_flight)
                try:
                    self._send_file(failure, found)
                finally:
                    with host._lock:
                        host.in_flight -= 1

            def _send_file(self, failure: int | None, found: tuple[bytes, str] | None) -> None:
                if host.delay_s:
                    time.sleep(host.delay_s)
                if failure is not None:
                    self._answer(failure, json.dumps({"error": f"status {failure}"}).encode(), "application/json")
                elif found is None:
                    self._answer(404, b'{"error": "not found"}', "application/json")
                else:
                    self._answer(200, found[0], found[1])

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(length)
                if host.refusal is not None:
                    status, reason = host.refusal
                    self._answer(status, json.dumps({"error": reason}).encode(), "application/json")
                    return
                upload = Upload(recipient=self.headers.get("X-Recipient", ""), kind=self.headers.get("X-Kind", ""),
                                name=unquote(self.headers.get("X-File-Name", "")),
                                mime_type=self.headers.get("Content-Type", ""),
                                caption=unquote(self.headers.get("X-Caption", "")), data=data)
                with host._lock:
                    host.uploads.append(upload)
                    number = len(host.uploads)
                self._answer(200, json.dumps({"message_id": f"file-{number}"}).encode(), "application/json")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-file-host", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

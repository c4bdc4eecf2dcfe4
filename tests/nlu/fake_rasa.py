"""A loopback HTTP server speaking Rasa 3's ``POST /model/parse`` JSON, for the HTTP backend tests.

``mode`` switches its behaviour: ``"ok"`` answers like Rasa, ``"error"`` answers HTTP 500,
``"hang"`` holds the request (until ``release()`` or at most ``hang_seconds``).
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = "20240101-000000-fake"


def rasa_answer(text: str) -> dict[str, Any]:
    """Return what a Rasa 3 server would answer for ``text`` (a canned, keyword-based intent)."""
    intent = "order_status" if "đơn" in text or "order" in text else "greet"
    other = "greet" if intent == "order_status" else "order_status"
    entities = []
    if "DH123456" in text:
        start = text.index("DH123456")
        entities.append(
            {
                "entity": "order_id",
                "start": start,
                "end": start + 8,
                "confidence_entity": 0.99,
                "value": "DH123456",
                "extractor": "DIETClassifier",
            }
        )
    return {
        "text": text,
        "intent": {"name": intent, "confidence": 0.93},
        "entities": entities,
        "text_tokens": [[0, len(text)]],
        "intent_ranking": [{"name": intent, "confidence": 0.93}, {"name": other, "confidence": 0.07}],
        "response_selector": {"all_retrieval_intents": [], "default": {"response": {}, "ranking": []}},
    }


class FakeRasaServer:
    """Runs the fake Rasa server on 127.0.0.1 in a background thread."""

    def __init__(self, hang_seconds: float = 5.0) -> None:
        self.mode = "ok"
        self.hang_seconds = hang_seconds
        self.requests: list[dict[str, Any]] = []
        self._released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                if self.path.startswith("/status"):
                    self._send(200, {"model_id": MODEL_ID, "model_file": f"models/{MODEL_ID}.tar.gz"})
                else:
                    self._send(404, {"status": "failure", "reason": "NotFound", "code": 404})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if not self.path.startswith("/model/parse"):
                    self._send(404, {"status": "failure", "reason": "NotFound", "code": 404})
                elif server.mode == "hang":
                    server._released.wait(server.hang_seconds)
                    self._send(200, rasa_answer(body.get("text", "")))
                elif server.mode == "error":
                    self._send(
                        500,
                        {
                            "version": "3.6.21",
                            "status": "failure",
                            "message": "An unexpected error occurred. Error: boom",
                            "reason": "ParsingError",
                            "code": 500,
                        },
                    )
                else:
                    self._send(200, rasa_answer(body.get("text", "")))

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeRasaServer:
        """Start serving."""
        self._thread.start()
        return self

    def release(self) -> None:
        """Let held ("hang") requests finish."""
        self._released.set()

    def stop(self) -> None:
        """Stop serving and free the port."""
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

"""``caredesk serve`` with CAREDESK_LOG_FORMAT=json: every line on stderr, CareDesk's and uvicorn's
own (start-up, requests), is one JSON object."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from helpdesk.jobs.remote import settings_environment
from tests.helpdesk.jobs.test_worker_process import wait_until
from tests.helpdesk.ops.test_worker_metrics import free_port

pytestmark = pytest.mark.slow  # starts a server and its worker child


def test_every_line_the_server_logs_is_json(make_settings, tmp_path):
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
    env.update(settings_environment(make_settings(log_level="INFO")))
    env.update({"CAREDESK_WORKER__MODE": "auto", "CAREDESK_LOG_FORMAT": "json"})
    stderr = (tmp_path / "serve.err").open("w")
    server = subprocess.Popen([sys.executable, "-c", "from helpdesk.cli import app; app()", "serve", "--port",
                               str(port)], env=env, stdout=subprocess.DEVNULL, stderr=stderr)

    def ready() -> bool:
        assert server.poll() is None, (tmp_path / "serve.err").read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, 60, "the server never became ready")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    finally:
        server.terminate()
        code = server.wait(timeout=30)
        stderr.close()
    lines = [line for line in (tmp_path / "serve.err").read_text().splitlines() if line.strip()]
    assert code in (0, -15), lines  # uvicorn stops gracefully, then re-raises the SIGTERM it caught
    entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
    loggers = {entry["logger"] for entry in entries}
    assert "uvicorn.error" in loggers  # uvicorn's start-up and shutdown lines came through the same handler
    assert any(entry["logger"] == "uvicorn.access" and "/healthz" in entry["message"] for entry in entries)

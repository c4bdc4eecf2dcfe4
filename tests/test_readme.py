"""The README's commands work as written, on whatever port `make run PORT=…` was given."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import httpx
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
CODE_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)


def shell_blocks() -> list[str]:
    return CODE_BLOCK.findall(README.read_text(encoding="utf-8"))


def agent_snippet() -> str:
    """The tour's block that logs in as the admin and answers with curl."""
    [block] = [block for block in shell_blocks() if "api/auth/token" in block]
    return block


def test_every_curl_example_follows_the_port():
    curls = [line for block in shell_blocks() for line in block.replace("\\\n", " ").splitlines() if "curl " in line]
    assert curls
    for line in curls:
        for address in re.findall(r"(?:https?://)?(?:localhost|127\.0\.0\.1)(:[^/\s\"']*)?", line):
            assert address == ":$PORT", line
    # the default is the Makefile's
    makefile = (README.parent / "Makefile").read_text(encoding="utf-8")
    default = re.search(r"^PORT \?= (\d+)$", makefile, re.MULTILINE)[1]
    assert f"PORT=${{PORT:-{default}}}" in agent_snippet()


@pytest.mark.slow
def test_the_agent_curl_example_answers_a_customer_on_another_port(make_settings):
    from tests.conftest import LiveServer

    settings = make_settings(admin={"email": "admin@caredesk.local", "password": "changeme"})
    with LiveServer(settings) as server:
        assert server.port != 8000
        escalate = httpx.post(f"{server.url}/webhooks/cli", json={
            "sender_id": "cli-readme-1", "message_id": "m1", "text": "cho mình gặp nhân viên"})
        assert escalate.status_code == 200

        def waiting() -> bool:
            token = httpx.post(f"{server.url}/api/auth/token", json={
                "email": "admin@caredesk.local", "password": "changeme"}).json()["access_token"]
            listed = httpx.get(f"{server.url}/api/conversations", params={"state": "waiting_for_agent"},
                               headers={"Authorization": f"Bearer {token}"}).json()["data"]
            return bool(listed)

        from tests.helpdesk.jobs.test_worker_process import wait_until

        wait_until(waiting, 30, "the conversation never waited for an agent")
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", agent_snippet()], capture_output=True,
                                text=True, timeout=60, env={**os.environ, "PORT": str(server.port)})
        assert result.returncode == 0, result.stderr
        assert "waiting_for_agent" in result.stdout  # the listing came back
        replies = httpx.get(f"{server.url}/webhooks/cli/messages", params={"sender_id": "cli-readme-1"}).json()
        assert any(row["author"] == "agent" and "Hạnh" in row["text"] for row in replies["data"]), replies

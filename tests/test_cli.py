"""The caredesk command: demo data, and chatting with a running server as a customer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session, select

from helpdesk.core.db import make_engine
from helpdesk.shop.models import Order

CAREDESK = str(Path(sys.executable).with_name("caredesk"))


def run_caredesk(*args: str, env: dict[str, str] | None = None, input_text: str | None = None, timeout: float = 120):
    return subprocess.run([CAREDESK, *args], input=input_text, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CAREDESK_ENVIRONMENT": "test", **(env or {})})


def test_demo_loads_the_documented_orders(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    result = run_caredesk("demo", env={"CAREDESK_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    engine = make_engine(url)
    with Session(engine) as session:
        codes = {order.code for order in session.exec(select(Order)).all()}
    engine.dispose()
    assert {"DH100001", "DH100002"} <= codes


def test_chat_gets_vietnamese_answers_from_a_running_server(live_server):
    result = run_caredesk("chat", "--server", live_server.url, "--as", "cli-test-1",
                          input_text="bảo hành bao lâu vậy shop\ncho mình gặp nhân viên\n/quit\n", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "12 tháng" in result.stdout
    assert "nhân viên" in result.stdout


def test_chat_explains_when_no_server_answers():
    result = run_caredesk("chat", "--server", "http://127.0.0.1:9", input_text="alo\n", timeout=30)
    assert result.returncode == 1
    assert "Cannot reach CareDesk" in result.stdout


def test_unknown_command_is_a_clear_error():
    result = run_caredesk("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr

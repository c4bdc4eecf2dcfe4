"""The caredesk command: demo data, and chatting with a running server as a customer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session, select

from helpdesk.channels.ledger import make_database_engine
from helpdesk.shop.models import Order

CAREDESK = str(Path(sys.executable).with_name("caredesk"))


def run_caredesk(*args: str, env: dict[str, str] | None = None, input_text: str | None = None, timeout: float = 120):
    return subprocess.run([CAREDESK, *args], input=input_text, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "CAREDESK_ENVIRONMENT": "test", **(env or {})})


@pytest.mark.slow
def test_demo_loads_the_documented_orders(tmp_path):
    url = f"sqlite:///{tmp_path}/demo.db"
    result = run_caredesk("demo", env={"CAREDESK_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    engine = make_database_engine(url)
    with Session(engine) as session:
        codes = {order.code for order in session.exec(select(Order)).all()}
    engine.dispose()
    assert {"DH100001", "DH100002"} <= codes


@pytest.mark.slow
def test_chat_gets_vietnamese_answers_from_a_running_server(live_server):
    result = run_caredesk("chat", "--server", live_server.url, "--as", "cli-test-1",
                          input_text="bảo hành bao lâu vậy shop\ncho mình gặp nhân viên\n/quit\n", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "12 tháng" in result.stdout
    assert "nhân viên" in result.stdout


@pytest.mark.slow
def test_chat_explains_when_no_server_answers():
    result = run_caredesk("chat", "--server", "http://127.0.0.1:9", input_text="alo\n", timeout=30)
    assert result.returncode == 1
    assert "Cannot reach CareDesk" in result.stdout


@pytest.mark.slow
def test_unknown_command_is_a_clear_error():
    result = run_caredesk("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


@pytest.mark.slow
def test_channels_lists_each_channel_and_whether_it_is_on(tmp_path):
    result = run_caredesk("channels", env={"CAREDESK_DATABASE_URL": f"sqlite:///{tmp_path}/c.db",
                                           "CAREDESK_TELEGRAM__TOKEN": "1:x", "CAREDESK_TELEGRAM__SECRET_TOKEN": "s"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert " on " in lines["telegram"] + " " and "off" in lines["facebook"]


@pytest.mark.slow
def test_set_webhook_registers_with_the_secret_token(tmp_path):
    from tests.fakes.telegram_api import FakeTelegramAPI

    with FakeTelegramAPI(token="123456:CLI") as fake:
        result = run_caredesk("set-webhook", "telegram", "https://shop.example/webhooks/telegram", env={
            "CAREDESK_DATABASE_URL": f"sqlite:///{tmp_path}/c.db", "CAREDESK_TELEGRAM__TOKEN": fake.token,
            "CAREDESK_TELEGRAM__SECRET_TOKEN": "cli-secret", "CAREDESK_TELEGRAM__API_BASE": fake.base_url})
        assert result.returncode == 0, result.stdout + result.stderr
        assert fake.webhook["url"] == "https://shop.example/webhooks/telegram"
        assert fake.webhook["secret_token"] == "cli-secret"


def test_serve_caps_web_chat_frames_at_the_configured_size(monkeypatch, tmp_path):
    import uvicorn
    from typer.testing import CliRunner

    from helpdesk.cli import app

    given: dict = {}
    monkeypatch.setattr(uvicorn, "run", lambda _app, **options: given.update(options))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout
    monkeypatch.setenv("CAREDESK_ENVIRONMENT", "test")
    monkeypatch.setenv("CAREDESK_DATABASE_URL", f"sqlite:///{tmp_path}/caredesk.db")
    monkeypatch.setenv("CAREDESK_LIMITS__WEBCHAT_FRAME_BYTES", "12345")
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 0, result.output
    assert given["ws_max_size"] == 12345


@pytest.mark.slow
@pytest.mark.parametrize("prepare", [False, True], ids=["serve", "serve-prepare"])
def test_serve_on_a_busy_port_fails_at_once_with_a_clear_message(tmp_path, prepare):
    import socket
    import time

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        started = time.monotonic()
        result = subprocess.run(
            [CAREDESK, "serve", "--port", str(port), *(["--prepare"] if prepare else [])], cwd=tmp_path,
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "CAREDESK_ENVIRONMENT": "test", "CAREDESK_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
        elapsed = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"127.0.0.1:{port}" in output and "already in use" in output
    assert f"PORT={port + 1}" in output  # says what to do instead
    assert "Traceback" not in output
    assert not (tmp_path / "c.db").exists()  # nothing was prepared or started before the port was checked
    assert elapsed < 15, elapsed


@pytest.mark.slow
def test_serve_on_an_address_not_of_this_machine_says_so(tmp_path):
    result = run_caredesk("serve", "--host", "192.0.2.1", "--port", "8000",
                          env={"CAREDESK_DATABASE_URL": f"sqlite:///{tmp_path}/c.db"})
    assert result.returncode == 1
    assert "Cannot serve on 192.0.2.1:8000" in result.stdout and "Traceback" not in result.stdout + result.stderr


def serve_process(make_settings, tmp_path, port: int, **settings) -> tuple[subprocess.Popen, Path]:
    """``caredesk serve`` on ``port`` with the test's settings (and its worker child); stderr to a file."""
    from helpdesk.jobs.remote import settings_environment

    env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
    env.update(settings_environment(make_settings(log_level="INFO", **settings)))
    env["CAREDESK_WORKER__MODE"] = "auto"
    log = tmp_path / "serve.err"
    with log.open("w") as stderr:
        server = subprocess.Popen([CAREDESK, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=stderr)
    return server, log


def stop_process(server: subprocess.Popen) -> None:
    """SIGTERM, and wait for it to end."""
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


@pytest.mark.slow
def test_serve_reports_a_rejected_telegram_token_at_start_and_still_serves(make_settings, tmp_path):
    import httpx

    from tests.conftest import TELEGRAM_SECRET
    from tests.fakes.telegram_api import FakeTelegramAPI
    from tests.helpdesk.jobs.test_worker_process import wait_until
    from tests.helpdesk.ops.test_worker_metrics import free_port

    port = free_port()
    with FakeTelegramAPI(token="123456:RIGHT") as fake:
        server, log = serve_process(make_settings, tmp_path, port, telegram={
            "token": "123456:REVOKED", "secret_token": TELEGRAM_SECRET, "api_base": fake.base_url})
        try:
            def reported() -> bool:
                assert server.poll() is None, log.read_text()
                return "rejected CareDesk's credentials" in log.read_text()

            wait_until(reported, 60, "the rejected token was never reported")
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            assert fake.calls_to("getMe")[0].token == "123456:REVOKED"
        finally:
            stop_process(server)
    line = next(line for line in log.read_text().splitlines() if "rejected CareDesk's credentials" in line)
    assert "telegram" in line and "Unauthorized" in line
    assert len(fake.calls_to("getMe")) == 1  # the server checked; its worker child did not check again

"""The caredesk command: demo data, and chatting with a running server as a customer."""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
    """``caredesk serve`` on ``port`` with the test's settings (and its worker child); its output (uvicorn's
    access log goes to stdout, the rest to stderr) to a file."""
    from helpdesk.jobs.remote import settings_environment

    env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
    env.update(settings_environment(make_settings(log_level="INFO", **settings)))
    env["CAREDESK_WORKER__MODE"] = "auto"
    log = tmp_path / "serve.err"
    with log.open("w") as stderr:
        server = subprocess.Popen([CAREDESK, "serve", "--port", str(port)], env=env, cwd=tmp_path,
                                  stdout=stderr, stderr=subprocess.STDOUT)
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


def start_chat(server_url: str | None, tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    """``caredesk chat`` as a process whose input the test types line by line (unbuffered output)."""
    command = [CAREDESK, "chat", *(["--server", server_url] if server_url else []), *args]
    out = (tmp_path / "chat.out").open("w")
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, text=True,
                               cwd=tmp_path, env={**os.environ, "CAREDESK_ENVIRONMENT": "test",
                                                  "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})})
    out.close()
    return process, tmp_path / "chat.out"


def type_line(process: subprocess.Popen, text: str) -> None:
    process.stdin.write(text + "\n")
    process.stdin.flush()


def wait_for_output(path: Path, needle: str, process: subprocess.Popen, timeout: float = 30.0) -> str:
    from tests.helpdesk.jobs.test_worker_process import wait_until

    def seen() -> bool:
        assert process.poll() is None or needle in path.read_text(), path.read_text()
        return needle in path.read_text()

    wait_until(seen, timeout, f"{needle!r} never printed: {path.read_text()}")
    return path.read_text()


def live_server_on(settings, port: int | None = None):
    """A LiveServer, on ``port`` if given (to stand in for a server that is started again)."""
    from tests.conftest import LiveServer

    server = LiveServer(settings)
    if port is not None:
        server.server.config.port = server.port = port
        server.url = f"http://127.0.0.1:{port}"
    return server


def replies_stored(url: str, sender_id: str) -> list[dict]:
    import httpx

    return httpx.get(f"{url}/webhooks/cli/messages", params={"sender_id": sender_id}).json()["data"]


@pytest.mark.slow
def test_chat_prints_each_reply_once(live_server):
    questions = ["bảo hành bao lâu vậy shop", "phí ship bao nhiêu", "shop mở cửa mấy giờ", "cho mình gặp nhân viên"]
    result = run_caredesk("chat", "--server", live_server.url, "--as", "cli-once-1",
                          input_text="\n".join([*questions, "/quit"]) + "\n", timeout=90)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = [line for line in result.stdout.splitlines() if line.startswith("🤖 Bot:")]
    stored = [row for row in replies_stored(live_server.url, "cli-once-1") if row["author"] == "bot"]
    assert len(stored) >= len(questions)
    assert len(printed) == len(stored), result.stdout


@pytest.mark.slow
def test_a_message_typed_while_the_server_is_down_is_kept_and_sent_when_it_is_back(make_settings, tmp_path):
    settings = make_settings()
    first = live_server_on(settings).__enter__()
    port = first.port
    chat, output = start_chat(first.url, tmp_path, "--as", "cli-down-1")
    try:
        wait_for_output(output, "Type /quit", chat)
        first.__exit__(None, None, None)  # the server stops while the customer is chatting
        type_line(chat, "bảo hành bao lâu vậy shop")
        text = wait_for_output(output, "Kept, not sent yet", chat)
        assert "not answering" in text
        with live_server_on(settings, port) as again:
            wait_for_output(output, "12 tháng", chat)
            assert "answers again" in output.read_text()
            assert replies_stored(again.url, "cli-down-1")  # the kept message reached the server, answered
            type_line(chat, "/quit")
            assert chat.wait(timeout=30) == 0, output.read_text()
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
    text = output.read_text()
    assert text.count("12 tháng") == 1 and "Traceback" not in text


@pytest.mark.slow
def test_a_chat_that_ends_while_the_server_is_down_says_what_was_not_sent(make_settings, tmp_path):
    server = live_server_on(make_settings()).__enter__()
    chat, output = start_chat(server.url, tmp_path, "--as", "cli-down-2")
    try:
        wait_for_output(output, "Type /quit", chat)
        server.__exit__(None, None, None)
        type_line(chat, "alo shop ơi")
        wait_for_output(output, "not answering", chat)
        chat.stdin.close()  # the customer leaves before the server is back
        code = chat.wait(timeout=60)
    finally:
        if chat.poll() is None:
            chat.kill()
            chat.wait()
    text = output.read_text()
    assert code == 1, text
    assert "Not sent" in text and "alo shop ơi" in text
    assert "Traceback" not in text


@pytest.mark.slow
def test_chat_finds_the_server_on_caredesk_port(live_server, tmp_path):
    chat, output = start_chat(None, tmp_path, "--as", "cli-port-1", env={"CAREDESK_PORT": str(live_server.port)})
    type_line(chat, "bảo hành bao lâu vậy shop")
    type_line(chat, "/quit")
    assert chat.wait(timeout=60) == 0, output.read_text()
    assert "12 tháng" in output.read_text() and live_server.url in output.read_text()


@pytest.mark.slow
def test_chat_finds_the_server_make_run_started_on_another_port_and_its_polls_stay_out_of_the_log(
        make_settings, tmp_path):
    import httpx

    from tests.helpdesk.jobs.test_worker_process import wait_until
    from tests.helpdesk.ops.test_worker_metrics import free_port

    port = free_port()
    server, log = serve_process(make_settings, tmp_path, port)
    try:
        def ready() -> bool:
            assert server.poll() is None, log.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, 60, "the server never became ready")
        assert (tmp_path / "var" / "caredesk-serve.json").exists()
        # no --server and no CAREDESK_PORT: the chat in the same directory finds the server's port
        chat, output = start_chat(None, tmp_path, "--as", "cli-found-1")
        type_line(chat, "bảo hành bao lâu vậy shop")
        wait_for_output(output, "12 tháng", chat)
        time.sleep(3)  # several polls while idle
        type_line(chat, "/quit")
        assert chat.wait(timeout=60) == 0, output.read_text()
        assert f"127.0.0.1:{port}" in output.read_text()
    finally:
        stop_process(server)
    served = log.read_text()
    assert "POST /webhooks/cli " in served  # the access log is on ...
    assert "/webhooks/cli/messages" not in served  # ... without a line per poll
    assert not (tmp_path / "var" / "caredesk-serve.json").exists()  # withdrawn when the server stopped

"""Processing in a child process (``CAREDESK_WORKER__MODE=process``, what ``caredesk serve`` runs).

A real uvicorn server starts a real child worker process; the two talk through the embedded broker.
Webhooks are processed by the child and its replies reach the fake Telegram; a web chat reply made in
the child reaches the visitor's socket held by the server; the inbox's events cross too; a killed
child is restarted and catches up with what arrived while it was down.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Iterator

import httpx
import pytest
import websockets

from helpdesk.core.events import events_from_json
from helpdesk.jobs.broker import BrokerClient
from tests.conftest import TELEGRAM_SECRET, LiveServer

pytestmark = pytest.mark.slow  # each test starts a server and its worker child process


def telegram_update(update_id: int, chat_id: int, text: str) -> dict:
    """A private-chat text update as Telegram posts it."""
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764000000, "text": text,
        "from": {"id": chat_id, "is_bot": False, "first_name": "Lan"},
        "chat": {"id": chat_id, "type": "private", "first_name": "Lan"}}}


def wait_until(check, timeout: float = 30.0, message: str = "timed out"):
    """Poll until ``check()`` is truthy; return its value."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, message
        time.sleep(0.05)
    return value


@pytest.fixture
def process_server(make_settings, fake_telegram) -> Iterator[LiveServer]:
    """CareDesk with a child worker process, Telegram pointed at the fake."""
    settings = make_settings(worker={"mode": "process"},
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    with LiveServer(settings) as server:
        wait_until(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 60, "worker never became ready")
        yield server


def post_update(server: LiveServer, update: dict) -> httpx.Response:
    return httpx.post(f"{server.url}/webhooks/telegram", json=update,
                      headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET})


def wiring_of(server: LiveServer):
    return server.server.config.app.state.wiring


def test_webhooks_are_processed_by_the_child_and_replies_sent(process_server, fake_telegram):
    ready = httpx.get(f"{process_server.url}/readyz").json()
    assert ready["checks"]["worker"] is True
    wiring = wiring_of(process_server)
    child_pid = wiring.worker._process.pid
    assert child_pid != os.getpid()
    # at a lower priority than the server, in the ordinary scheduling class
    assert os.getpriority(os.PRIO_PROCESS, child_pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)
    assert os.sched_getscheduler(child_pid) == os.SCHED_OTHER

    for index in range(5):
        response = post_update(process_server, telegram_update(100 + index, 777, f"bảo hành bao lâu vậy {index}"))
        assert response.status_code == 200, response.text
    # a redelivery is acknowledged and not answered again
    assert post_update(process_server, telegram_update(100, 777, "bảo hành bao lâu vậy 0")).json()["new"] == 0
    wait_until(lambda: len(fake_telegram.sent_messages(777)) >= 5)
    time.sleep(0.5)
    assert len(fake_telegram.sent_messages(777)) == 5


def test_a_child_in_the_idle_class_still_answers(make_settings, fake_telegram):
    settings = make_settings(worker={"mode": "process", "idle_class": True},
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    with LiveServer(settings) as server:
        wait_until(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 60, "no ready worker")
        child_pid = wiring_of(server).worker._process.pid
        threads = os.listdir(f"/proc/{child_pid}/task")
        assert len(threads) > 1  # the threads it started inherited the class
        assert {os.sched_getscheduler(int(thread)) for thread in threads} == {os.SCHED_IDLE}
        answered = post_update(server, telegram_update(300, 4300, "bảo hành bao lâu vậy"))
        assert answered.status_code == 200
        wait_until(lambda: fake_telegram.sent_messages(4300), 30, "the idle child never answered")


def test_a_killed_child_is_restarted_and_catches_up(process_server, fake_telegram):
    wiring = wiring_of(process_server)
    first = wiring.worker._process.pid
    os.kill(first, signal.SIGKILL)
    # while no child runs, webhooks are still acknowledged and stored
    response = post_update(process_server, telegram_update(900, 4242, "cho mình hỏi chính sách đổi trả"))
    assert response.status_code == 200
    wait_until(lambda: wiring.worker._process.pid != first and wiring.worker.alive, 60, "no new child")
    assert wiring.worker.restarts == 1
    wait_until(lambda: fake_telegram.sent_messages(4242), 30, "the stored event was never processed")


def test_web_chat_replies_and_inbox_events_cross_from_the_child(process_server):
    url = process_server.url
    wiring = wiring_of(process_server)

    async def scenario() -> tuple[list[dict], list[str]]:
        async with httpx.AsyncClient(base_url=url) as http:
            session = (await http.post("/webchat/session")).json()
        # the server's event stream, as the inbox reads it, through a broker connection of its own
        observer = BrokerClient(wiring.broker.path)
        await observer.connect()
        events = observer.pubsub()
        await events.subscribe("caredesk:events")
        names: list[str] = []
        async with websockets.connect(f"ws://127.0.0.1:{process_server.port}/webchat/ws?token={session['token']}",
                                      origin=url) as socket:
            await socket.send(json.dumps({"type": "message", "id": "msg-00000001", "text": "cho mình hỏi bảo hành bao lâu"}))
            frames = []
            try:
                async with asyncio.timeout(30):
                    while not any(f.get("type") == "message" and f.get("author") == "bot" for f in frames):
                        frames.append(json.loads(await socket.recv()))
                    async for message in events.listen():
                        names.extend(event.name for event in events_from_json(message["data"]))
                        if names.count("message_created") >= 2:
                            break
            except TimeoutError:
                pytest.fail(f"frames {frames}, events {names}")
        await observer.aclose()
        return frames, names

    frames, names = asyncio.run(scenario())
    assert [f for f in frames if f.get("author") == "bot"][0]["text"]
    assert names.count("message_created") >= 2  # the customer's message and the bot's reply


@pytest.mark.parametrize("worker_mode", ["auto", "external"])
def test_external_mode_hands_jobs_to_a_caredesk_worker_through_redis(make_settings, fake_telegram, redis_url,
                                                                    worker_mode):
    import subprocess
    import sys

    from helpdesk.jobs.remote import settings_environment

    settings = make_settings(worker={"mode": "external"}, redis_url=redis_url,
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    with LiveServer(settings) as server:
        assert "worker" not in httpx.get(f"{server.url}/readyz").json()["checks"]
        env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
        env.update(settings_environment(settings))
        # auto: what `caredesk worker` runs with in the compose file; external: one environment for the
        # servers and the workers alike (the worker still follows the stream, not hands jobs on)
        env["CAREDESK_WORKER__MODE"] = worker_mode
        worker = subprocess.Popen([sys.executable, "-c", "from helpdesk.cli import app; app()", "worker"], env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_until(lambda: "worker running" in (worker.stdout.readline() or "") or worker.poll() is not None, 60)
            assert worker.poll() is None, worker.stdout.read()
            assert post_update(server, telegram_update(501, 9001, "cảm ơn shop nhé")).status_code == 200
            wait_until(lambda: fake_telegram.sent_messages(9001), 30, "the worker never answered")
        finally:
            worker.terminate()
            assert worker.wait(timeout=20) == 0


async def test_events_nobody_took_up_are_swept_up(make_settings, fake_telegram):
    from sqlmodel import Session

    from connectors.base import InboundMessage
    from helpdesk.channels import service
    from tests.conftest import start_client

    settings = make_settings(telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    async for client in start_client(settings):
        wiring = client.wiring
        with Session(wiring.engine) as session:  # stored, acknowledged, and its job lost
            service.record_inbound(session, InboundMessage(channel="telegram", sender_id="31337", external_id="x-1",
                                                           text="xin chào"), {})
            session.commit()
        assert await wiring.channel_jobs.sweep_stray_events(older_than_s=3600) == 0  # too young to be a stray
        assert await wiring.channel_jobs.sweep_stray_events(older_than_s=0) == 1
        await client.settle()
        assert fake_telegram.sent_messages(31337)
        assert await wiring.channel_jobs.sweep_stray_events(older_than_s=0) == 0

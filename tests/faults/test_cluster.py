"""The production stack scaled out, as docker-compose.yml runs it: PostgreSQL, Redis, the one-shot
`caredesk migrate`, two `caredesk serve` replicas behind a real load balancer (haproxy) and three
`caredesk worker` replicas, each with exactly the command and settings of its compose service.

Thousands of webhooks over many chats go through the load balancer while one worker is SIGKILLed and
one app replica restarts: every acknowledged message is answered exactly once, in order per chat,
and an agent's live socket on an app replica sees every customer message, whichever replica stored
it and whichever worker answered it."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.fakes.telegram_api import FakeTelegramAPI
from tests.faults.cluster import (
    SECRET,
    CareDesk,
    Crowd,
    PrivatePostgres,
    PrivateRedis,
    first_answer,
    free_port,
)
from tests.faults.stack import OPERATOR_ENV, LoadBalancer, process_argv, process_environment
from tests.faults.test_delivery import TIMELINE, assert_every_message_answered_once_in_order, later, sender_killed

pytestmark = [pytest.mark.slow, pytest.mark.alone, pytest.mark.timeout(600)]

APPS = 2
WORKERS = 3


class AgentSocket:
    """An admin's live inbox socket on one app replica, recording every frame."""

    def __init__(self, port: int):
        self.port = port
        self.frames: list[dict] = []
        self._task: asyncio.Task | None = None
        self._hello = asyncio.Event()

    async def open(self) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=10) as http:
            response = await http.post("/api/auth/session", json={
                "email": OPERATOR_ENV["CAREDESK_ADMIN__EMAIL"], "password": OPERATOR_ENV["CAREDESK_ADMIN__PASSWORD"]})
            assert response.status_code == 200, response.text
        # the production cookie is Secure, so a plain-HTTP client would not send it back on its own
        cookie = response.cookies["caredesk_session"]
        socket = await websockets.connect(f"ws://127.0.0.1:{self.port}/inbox/live",
                                          additional_headers={"Cookie": f"caredesk_session={cookie}"})
        self._task = asyncio.create_task(self._read(socket))
        await asyncio.wait_for(self._hello.wait(), 10)

    async def _read(self, socket) -> None:
        async with socket:
            async for text in socket:
                frame = json.loads(text)
                if frame.get("type") == "hello":
                    self._hello.set()
                self.frames.append(frame)

    def customer_messages(self) -> set[int]:
        """The ids of the customer messages the socket was told about."""
        return {frame["message_id"] for frame in self.frames
                if frame.get("event") == "message_created" and frame.get("author") == "customer"}

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def customer_message_count(database_url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM messages WHERE author = 'customer'")).scalar()
    finally:
        engine.dispose()


async def test_two_apps_and_three_workers_behind_a_load_balancer(tmp_path: Path, trained_models_dir: Path):
    postgres, redis = PrivatePostgres(), PrivateRedis()
    fake = FakeTelegramAPI(token="123456:CLUSTER").start()
    postgres.start()
    redis.start()
    app_ports = [free_port() for _ in range(APPS)]
    balancer = LoadBalancer(app_ports)

    def env(service: str) -> dict[str, str]:
        # compose's settings for the service; the fake platform and the shipped data are the test's own
        host = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
        return {**host, **process_environment(
            service, database_url=postgres.url, redis_url=redis.url,
            CAREDESK_TELEGRAM__TOKEN=fake.token, CAREDESK_TELEGRAM__SECRET_TOKEN=SECRET,
            CAREDESK_TELEGRAM__API_BASE=fake.base_url, CAREDESK_NLU__MODELS_DIR=str(trained_models_dir),
            CAREDESK_DATA_DIR=str(Path(__file__).parents[2] / "data"), CAREDESK_LOG_LEVEL="WARNING",
            CAREDESK_WORKER__RETRY_MAX_S="2")}

    apps = [CareDesk(process_argv("app", port), env("app"), tmp_path, f"app{n}", port)
            for n, port in enumerate(app_ports, start=1)]
    # each worker's probe port (compose's 8001 inside each container) is a loopback port of its own here
    worker_ports = [free_port() for _ in range(WORKERS)]
    workers = [CareDesk(process_argv("worker"), {**env("worker"), "CAREDESK_WORKER__HTTP_PORT": str(port)},
                        tmp_path, f"worker{n}", port) for n, port in enumerate(worker_ports, start=1)]
    crowd = Crowd(balancer.port, chats=50, per_chat=40, pause_s=0.3)
    agent = AgentSocket(app_ports[0])
    try:
        # a deploy: the one-shot migrate service first, then the replicas
        migrate = CareDesk(process_argv("migrate"), env("migrate"), tmp_path, "migrate")
        migrate.start()
        assert migrate.process.wait(300) == 0, migrate.log_tail()
        for app in apps:
            app.start()
        for worker in workers:
            worker.start()
        for process in (*apps, *workers):
            process.wait_ready()  # what compose's healthchecks read
        balancer.start()
        await agent.open()  # before the first message: it must hear every one
        await first_answer(fake, balancer.port)

        def kill_worker() -> None:
            workers[1].kill()
            sender_killed("worker2 killed")

        def restart_app() -> None:
            apps[1].stop()
            apps[1].start()

        TIMELINE.clear()
        started = time.perf_counter()
        await asyncio.gather(crowd.write(), later(3, kill_worker), later(6, restart_app))
        # the load balancer takes the restarting replica out, so the crowd may see no refusal at all
        await assert_every_message_answered_once_in_order(fake, crowd, started, postgres.url, *apps, *workers,
                                                          faults_reach_crowd=False)
        assert workers[1].process.returncode == -9
        stored = await asyncio.to_thread(customer_message_count, postgres.url)
        assert stored == crowd.chats * crowd.per_chat + 1
        deadline = time.monotonic() + 10
        while len(agent.customer_messages()) < stored and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert len(agent.customer_messages()) == stored, "the agent's socket missed customer messages"
    finally:
        await agent.close()
        balancer.remove()
        for process in (*apps, *workers):
            process.kill()
        redis.remove()
        postgres.remove()
        fake.stop()

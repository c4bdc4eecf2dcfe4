"""No acknowledged message is lost, answered twice or answered out of order while the machinery
fails under it: worker and server killed (SIGKILL) and restarted, Redis killed and started again,
PostgreSQL stopped as by a crash and started again — on the production shape (PostgreSQL, Redis,
`caredesk serve` in external mode and a `caredesk worker`) and on the embedded default (SQLite, the
server's child worker).

Thousands of messages over many chats, each chat asking questions whose answers tell which question
they answer; the platform's fake records every answer sent."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.cluster import CareDesk, Crowd, PrivatePostgres, PrivateRedis, caredesk_env, free_port, verdict
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]


async def later(seconds: float, action, *args) -> None:
    """Run a blocking fault action after ``seconds``, off the loop (the crowd keeps writing)."""
    await asyncio.sleep(seconds)
    await asyncio.to_thread(action, *args)


async def all_answered(fake: FakeTelegramAPI, expected: int, timeout: float) -> float:
    """Wait until ``expected`` answers arrived and no more come for a moment; how long it took."""
    started = time.monotonic()
    deadline = started + timeout
    while len(fake.sent_messages()) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    await asyncio.sleep(2.0)  # time for a duplicate to show up
    return time.monotonic() - started


def explain(*processes: CareDesk) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.log_tail()}" for p in processes)


@pytest.fixture
def fake_platform():
    with FakeTelegramAPI(token="123456:FAULTS") as fake:
        yield fake


async def test_production_shape_loses_nothing_through_kills_and_outages(
        tmp_path: Path, trained_models_dir: Path, fake_platform: FakeTelegramAPI):
    postgres, redis = PrivatePostgres(), PrivateRedis()
    postgres.start()
    redis.start()
    port = free_port()
    env = caredesk_env(tmp_path, trained_models_dir, fake_platform.base_url, fake_platform.token,
                       database_url=postgres.url, redis_url=redis.url, worker__mode="external")
    server = CareDesk(["serve", "--port", str(port)], env, tmp_path, "server", port)
    worker = CareDesk(["worker"], {**env, "CAREDESK_WORKER__MODE": "auto"}, tmp_path, "worker")
    crowd = Crowd(port, chats=40, per_chat=50, pause_s=0.3)
    try:
        server.start()
        server.wait_ready()
        worker.start()

        def restart(process: CareDesk) -> None:
            process.kill()
            time.sleep(1.0)
            process.start()

        def outage(stop, start, seconds: float) -> None:
            stop()
            time.sleep(seconds)
            start()

        await asyncio.gather(
            crowd.write(),
            later(2, restart, worker),
            later(5, outage, redis.kill, redis.start, 6),
            later(13, outage, postgres.stop, postgres.start, 6),
            later(21, restart, server),
        )
        took = await all_answered(fake_platform, crowd.chats * crowd.per_chat, timeout=120)
        result = verdict(fake_platform.sent_messages(), crowd.chat_ids(), crowd.per_chat)
        assert result == {"lost": 0, "duplicated": 0, "out_of_order_chats": 0, "unexpected": 0}, (
            f"{result}; refused deliveries {dict(crowd.refused)}; settled {took:.1f}s after the crowd\n"
            + explain(server, worker))
        assert crowd.refused, "no fault reached a delivery: the test did not test anything"
    finally:
        server.kill()
        worker.kill()
        redis.remove()
        postgres.remove()


async def test_embedded_default_loses_nothing_through_kills_and_restarts(
        tmp_path: Path, trained_models_dir: Path, fake_platform: FakeTelegramAPI):
    port = free_port()
    env = caredesk_env(tmp_path, trained_models_dir, fake_platform.base_url, fake_platform.token,
                       database_url=f"sqlite:///{tmp_path}/caredesk.db")
    server = CareDesk(["serve", "--port", str(port)], env, tmp_path, "server", port)
    crowd = Crowd(port, chats=40, per_chat=40, pause_s=0.25)
    try:
        server.start()
        server.wait_ready()

        def kill_child() -> None:
            # the message worker, a child of the server: the server starts another
            for entry in Path("/proc").glob("[0-9]*"):
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == server.process.pid:
                        os.kill(int(entry.name), signal.SIGKILL)
                except (OSError, ValueError, IndexError):
                    continue

        def crash_and_restart() -> None:
            server.kill()
            time.sleep(0.5)
            server.start()

        def orderly_restart() -> None:
            server.stop()
            server.start()

        await asyncio.gather(
            crowd.write(),
            later(2, kill_child),
            later(7, crash_and_restart),
            later(14, orderly_restart),
        )
        took = await all_answered(fake_platform, crowd.chats * crowd.per_chat, timeout=120)
        result = verdict(fake_platform.sent_messages(), crowd.chat_ids(), crowd.per_chat)
        assert result == {"lost": 0, "duplicated": 0, "out_of_order_chats": 0, "unexpected": 0}, (
            f"{result}; refused deliveries {dict(crowd.refused)}; settled {took:.1f}s after the crowd\n"
            + explain(server))
        assert crowd.refused, "no fault reached a delivery: the test did not test anything"
    finally:
        server.kill()

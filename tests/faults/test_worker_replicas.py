"""Several `caredesk worker` replicas on one jobs stream (PostgreSQL, Redis, `caredesk serve` in
external mode): one worker is SIGKILLed while customers write; its unfinished jobs are taken over by
the others within the claim idle time, and every acknowledged message is answered once, in its chat's
order, though a chat's consecutive messages land on different workers."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from helpdesk.jobs.streams import GROUP, STREAM
from tests.faults.cluster import (
    CareDesk,
    Crowd,
    PrivatePostgres,
    PrivateRedis,
    caredesk_env,
    first_answer,
    free_port,
    verdict,
)
from tests.faults.test_delivery import (
    TIMELINE,
    all_answered,
    everything_settled,
    explain,
    sender_killed,
    unexplained_repeats,
)
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = [pytest.mark.slow, pytest.mark.alone, pytest.mark.timeout(600)]

CLAIM_IDLE_S = 3.0


async def pending_of(client, pid: int) -> int | None:
    """How many jobs the consumer of process ``pid`` holds unacknowledged (None: it never read one)."""
    summary = await client.xpending(STREAM, GROUP)
    prefix = f"{socket.gethostname()}-{pid}-"
    counts = [int(entry["pending"]) for entry in summary.get("consumers") or () if entry["name"].startswith(prefix)]
    return sum(counts) if counts else None


async def test_a_killed_workers_jobs_are_taken_over_and_every_message_answered_once_in_order(
        tmp_path: Path, trained_models_dir: Path):
    postgres, redis = PrivatePostgres(), PrivateRedis()
    postgres.start()
    redis.start()
    port = free_port()
    with FakeTelegramAPI(token="123456:REPLICAS") as fake:
        env = caredesk_env(tmp_path, trained_models_dir, fake.base_url, fake.token, database_url=postgres.url,
                           redis_url=redis.url, worker__mode="external", worker__claim_idle_s=str(CLAIM_IDLE_S))
        server = CareDesk(["serve", "--port", str(port)], env, tmp_path, "server", port)
        workers = [CareDesk(["worker"], {**env, "CAREDESK_WORKER__MODE": "auto"}, tmp_path, f"worker-{n}")
                   for n in range(3)]
        crowd = Crowd(port, chats=30, per_chat=30, pause_s=0.2)
        client = aioredis.from_url(redis.url, decode_responses=True)
        try:
            server.start()
            server.wait_ready()
            for worker in workers:
                worker.start()
            await first_answer(fake, port)
            victim = workers[0]
            takeover: dict[str, float] = {}

            async def kill_and_time_takeover() -> None:
                # killed while it holds jobs: freeze it (SIGSTOP) once it has some in hand, so the count
                # read while it is frozen is what it holds when it dies; thaw and wait again if it was 0
                deadline = time.monotonic() + 30
                pid = victim.process.pid
                held = 0
                while time.monotonic() < deadline:
                    if await pending_of(client, pid):
                        os.killpg(pid, signal.SIGSTOP)
                        held = await pending_of(client, pid) or 0
                        if held:
                            break
                        os.killpg(pid, signal.SIGCONT)
                    await asyncio.sleep(0.005)
                await asyncio.to_thread(victim.kill)
                killed_at = time.monotonic()
                sender_killed("worker killed")
                while await pending_of(client, pid):
                    await asyncio.sleep(0.05)
                takeover.update(held=float(held), seconds=time.monotonic() - killed_at)

            async def kill_later() -> None:
                await asyncio.sleep(2)
                await kill_and_time_takeover()

            TIMELINE.clear()
            started = time.perf_counter()
            await asyncio.gather(crowd.write(), kill_later())
            print(f"takeover after SIGKILL: {takeover}")
            assert takeover["held"] > 0, "the killed worker held no job: nothing was taken over"
            # bounded: the idle time, one look of the others (a third of it), and a loaded machine's slack
            assert takeover["seconds"] < CLAIM_IDLE_S + CLAIM_IDLE_S / 3 + 3.0, takeover
            await all_answered(fake, crowd.chats * crowd.per_chat, timeout=120)
            await everything_settled(postgres.url)
            result = verdict(fake.sent_messages(), crowd.chat_ids(), crowd.per_chat)
            repeats = unexplained_repeats(fake, crowd, started)  # only a send in flight at the kill may repeat
            print(f"replicas: {result}")
            assert (result["lost"], result["out_of_order_chats"], result["unexpected"], repeats) == (0, 0, 0, []), (
                f"{result}\n" + explain(server, *workers))
            assert await client.xpending(STREAM, GROUP) == {"pending": 0, "min": None, "max": None, "consumers": []}
        finally:
            await client.aclose()
            server.kill()
            for worker in workers:
                worker.kill()
            redis.remove()
            postgres.remove()

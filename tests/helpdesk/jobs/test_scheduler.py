"""The generic scheduler: named periodic work, in the order registered, each at its interval."""

from __future__ import annotations

import asyncio

from helpdesk.jobs.scheduler import Scheduler


async def test_work_runs_at_its_interval_the_first_time_after_one_interval_unless_told():
    scheduler = Scheduler(tick_s=0.01)
    ran: list[str] = []

    async def record(name: str) -> None:
        ran.append(name)

    scheduler.add("every turn", lambda: record("every turn"), every_s=0.0, first_after_s=0.0)
    scheduler.add("hourly", lambda: record("hourly"), every_s=3600)
    scheduler.add("quick", lambda: record("quick"), every_s=0.05)
    await scheduler.start()
    try:
        await asyncio.sleep(0.2)
    finally:
        await scheduler.stop()
    assert ran[0] == "every turn"
    assert "hourly" not in ran
    assert 2 <= ran.count("quick") <= 5
    assert ran.count("every turn") > ran.count("quick")


async def test_failing_work_is_logged_and_runs_again_at_its_next_time(caplog):
    scheduler = Scheduler(tick_s=0.01)
    tries: list[int] = []

    async def broken() -> None:
        tries.append(1)
        raise RuntimeError("boom")

    scheduler.add("broken check", broken, every_s=0.0, first_after_s=0.0)
    await scheduler.start()
    try:
        await asyncio.sleep(0.1)
    finally:
        await scheduler.stop()
    assert len(tries) >= 2
    assert "broken check failed" in caplog.text


async def test_run_soon_runs_work_before_its_time():
    scheduler = Scheduler(tick_s=3600)  # it would otherwise not look again for an hour
    ran = asyncio.Event()

    async def hourly() -> None:
        ran.set()

    scheduler.add("hourly", hourly, every_s=3600)
    await scheduler.start()
    try:
        await asyncio.sleep(0.01)
        assert not ran.is_set()
        scheduler.run_soon("hourly")
        await asyncio.wait_for(ran.wait(), 1)
    finally:
        await scheduler.stop()


async def test_shared_work_runs_once_per_interval_across_schedulers_and_local_work_in_each(redis_url):
    import redis.asyncio as aioredis

    from helpdesk.jobs.scheduler import ClusterOnce

    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in range(2)]
    schedulers = [Scheduler(tick_s=0.01, gate=ClusterOnce(client)) for client in clients]
    shared: list[int] = []
    local: list[int] = []
    for index, scheduler in enumerate(schedulers):
        async def record_shared(index: int = index) -> None:
            shared.append(index)

        async def record_local(index: int = index) -> None:
            local.append(index)

        scheduler.add("sla check", record_shared, every_s=0.1, first_after_s=0.0, shared=True)
        scheduler.add("model follow", record_local, every_s=0.1, first_after_s=0.0)
    for scheduler in schedulers:
        await scheduler.start()
    try:
        await asyncio.sleep(1.0)
    finally:
        for scheduler in schedulers:
            await scheduler.stop()
        for client in clients:
            await client.aclose()
    # about ten windows of 0.1 s: the shared work ran once in each (by either), the local one twice
    assert 8 <= len(shared) <= 12, shared
    assert set(local) == {0, 1} and len(local) >= 16


async def test_shared_work_runs_here_when_redis_cannot_be_asked():
    import redis.asyncio as aioredis

    from helpdesk.jobs.scheduler import ClusterOnce

    client = aioredis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    scheduler = Scheduler(tick_s=0.01, gate=ClusterOnce(client))
    ran = asyncio.Event()

    async def check() -> None:
        ran.set()

    scheduler.add("sla check", check, every_s=0.1, first_after_s=0.0, shared=True)
    await scheduler.start()
    try:
        await asyncio.wait_for(ran.wait(), 3)
    finally:
        await scheduler.stop()
        await client.aclose()

"""Jobs through a Redis Stream with a consumer group (external mode): several worker consumers share
the stream and every job runs once; a dead consumer's jobs are taken over; one chat's work stays in
order across consumers; a poison job is parked and listed for admins. All on the real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from anyio import to_thread

from helpdesk.jobs.locks import RedisKeyLocks
from helpdesk.jobs.parked import park_job
from helpdesk.jobs.runner import JobFailed, JobRunner
from helpdesk.jobs.streams import GROUP, STREAM, PoisonJob, StreamConsumer, StreamPublisher


def worker_settings(**overrides: object) -> SimpleNamespace:
    values = {"retry_base_s": 0.01, "retry_max_s": 0.05, "concurrency": 8, "claim_idle_s": 0.5,
              "max_job_deliveries": 3}
    values.update(overrides)
    return SimpleNamespace(**values)


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.from_url(redis_url, decode_responses=True, socket_timeout=10)  # as the wiring's
    yield client
    await client.aclose()


async def publish(redis_client, name: str, **args: object) -> None:
    await StreamPublisher(redis_client).publish("ignored", json.dumps({"kind": name, **args}))


async def parked_nowhere(job: PoisonJob) -> None:
    raise AssertionError(f"nothing should be parked: {job}")


async def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def pending_count(redis_client) -> int:
    return (await redis_client.xpending(STREAM, GROUP))["pending"]


def consumer(redis_client, runner: JobRunner, settings: SimpleNamespace, name: str, park=parked_nowhere):
    return StreamConsumer(redis_client, runner, settings, park=park, name=name)


async def read_by_a_killed_worker(redis_client, numbers: range) -> float:
    """Publish the jobs numbered ``numbers``, read by a worker ("killed") that was killed before
    finishing them (no XACK, ever); when it died (monotonic)."""
    for n in numbers:
        await publish(redis_client, "count", n=n)
    taken = await redis_client.xreadgroup(GROUP, "killed", {STREAM: ">"}, count=len(numbers) + 5)
    assert len(taken[0][1]) == len(numbers)
    return time.monotonic()


async def test_jobs_shared_by_three_consumers_each_run_once_and_are_acknowledged(redis_client):
    settings = worker_settings()
    ran: Counter[int] = Counter()
    consumers = []
    for index in range(3):
        runner = JobRunner(settings, concurrency=settings.concurrency)

        def handler(args: dict, runner: JobRunner = runner) -> None:
            async def work() -> None:
                await asyncio.sleep(0.001)
                ran[args["n"]] += 1
            runner.submit(f"chat-{args['n'] % 7}", work)

        runner.register("count", handler)
        consumers.append(consumer(redis_client, runner, settings, f"worker-{index}"))
    for item in consumers:
        await item.ensure_group()
        await item.start()
    try:
        for n in range(300):
            await publish(redis_client, "count", n=n)
        await wait_for(lambda: sum(item.acked for item in consumers) == 300)
    finally:
        for item in consumers:
            await item.stop()
    assert sorted(ran) == list(range(300)) and set(ran.values()) == {1}
    assert all(item.acked > 0 for item in consumers), [item.acked for item in consumers]  # shared
    assert await pending_count(redis_client) == 0


async def test_a_job_is_acknowledged_only_once_its_work_has_finished(redis_client):
    settings = worker_settings()
    runner = JobRunner(settings)
    release = asyncio.Event()
    runner.register("slow", lambda _args: runner.submit("chat", release.wait))
    worker = consumer(redis_client, runner, settings, "worker")
    await worker.ensure_group()
    await worker.start()
    try:
        await publish(redis_client, "slow")
        await wait_for(lambda: worker.in_flight)
        await asyncio.sleep(0.8)  # longer than claim_idle_s: the job in hand is kept fresh, not taken over
        assert await pending_count(redis_client) == 1 and worker.acked == 0
        release.set()
        await wait_for(lambda: worker.acked == 1)
    finally:
        await worker.stop()
    assert await pending_count(redis_client) == 0


async def test_the_jobs_of_a_consumer_that_died_are_taken_over_after_the_idle_time(redis_client):
    settings = worker_settings(claim_idle_s=0.5)
    ran: list[int] = []
    runner = JobRunner(settings)

    def handler(args: dict) -> None:
        async def work() -> None:
            ran.append(args["n"])
        runner.submit("chat", work)

    runner.register("count", handler)
    survivor = consumer(redis_client, runner, settings, "survivor")
    await survivor.ensure_group()
    killed_at = await read_by_a_killed_worker(redis_client, range(5))
    await survivor.start()
    try:
        await wait_for(lambda: len(ran) == 5, timeout=5)
        takeover_s = time.monotonic() - killed_at
    finally:
        await survivor.stop()
    assert sorted(ran) == [0, 1, 2, 3, 4]
    # bounded: the idle time plus one look (a third of it), with room for a loaded machine
    assert 0.5 <= takeover_s < 0.5 + 0.5 / 3 + 1.0, takeover_s
    assert await pending_count(redis_client) == 0


async def test_a_dead_consumers_jobs_are_taken_over_by_a_consumer_whose_places_are_all_in_use(redis_client):
    # a killed worker leaves its chats' locks behind: the survivor's places fill with those chats'
    # newer jobs, waiting; the killed one's own (older) jobs are taken over all the same
    settings = worker_settings(claim_idle_s=0.5, concurrency=1)
    ran: list[int] = []
    release = asyncio.Event()
    runner = JobRunner(settings, concurrency=settings.concurrency)

    def handler(args: dict) -> None:
        async def work() -> None:
            if args["n"] >= 100:
                await release.wait()
            ran.append(args["n"])
        runner.submit(f"chat-{args['n']}", work)

    runner.register("count", handler)
    survivor = consumer(redis_client, runner, settings, "survivor")
    await survivor.ensure_group()
    killed_at = await read_by_a_killed_worker(redis_client, range(3))
    for n in range(100, 100 + survivor.capacity + 2):  # more than the survivor has places for
        await publish(redis_client, "count", n=n)
    await survivor.start()
    try:
        await wait_for(lambda: len(survivor.in_flight) >= survivor.capacity)

        async def killed_holds() -> int:
            summary = await redis_client.xpending(STREAM, GROUP)
            return sum(int(entry["pending"]) for entry in summary["consumers"] if entry["name"] == "killed")

        while await killed_holds():
            assert time.monotonic() - killed_at < 0.5 + 0.5 / 3 + 1.0, "not taken over within the idle time"
            await asyncio.sleep(0.02)
        assert not ran  # every place was in use the whole time
        release.set()
        await wait_for(lambda: len(ran) == 3 + survivor.capacity + 2)
        await wait_for(lambda: survivor.acked == len(ran))
    finally:
        await survivor.stop()
    assert sorted(ran)[:3] == [0, 1, 2] and len(set(ran)) == len(ran)
    assert await pending_count(redis_client) == 0
    assert survivor._room._value == survivor.capacity  # the places taken beyond room gave none back


async def test_jobs_waiting_for_a_chat_a_killed_worker_held_leave_their_places_to_other_chats(redis_client):
    # A killed worker's chat lock lives on for its time to live (10 s by default). The chat's newer
    # jobs wait for it; they used to hold every reading place meanwhile, and the other chats' jobs
    # stayed unread in the stream until the lock expired.
    settings = worker_settings(concurrency=1)
    runner = JobRunner(settings, concurrency=1, shared_locks=RedisKeyLocks(redis_client, ttl_s=10))
    ran: list[tuple[str, int]] = []

    def handler(args: dict) -> None:
        async def work() -> None:
            ran.append((args["chat"], args["n"]))
        runner.submit(args["chat"], work)

    runner.register("message", handler)
    await redis_client.set("caredesk:lock:held", "a killed worker's", px=10_000)
    worker = consumer(redis_client, runner, settings, "survivor")
    await worker.ensure_group()
    for n in range(worker.capacity + 2):  # more than the worker has places for
        await publish(redis_client, "message", chat="held", n=n)
    await publish(redis_client, "message", chat="other", n=0)
    await worker.start()
    try:
        await wait_for(lambda: ("other", 0) in ran, timeout=3)
        assert ran == [("other", 0)]  # the held chat still waits for its lock
        # what a worker holds in hand stays bounded while they wait
        for n in range(worker.capacity + 2, worker.most_in_hand + 5):
            await publish(redis_client, "message", chat="held", n=n)
        await wait_for(lambda: len(worker.in_flight) == worker.most_in_hand)
        await asyncio.sleep(0.3)
        assert len(worker.in_flight) == worker.most_in_hand
        await redis_client.delete("caredesk:lock:held")  # as when its time to live runs out
        await wait_for(lambda: worker.acked == worker.most_in_hand + 6)
    finally:
        await worker.stop()
    assert [n for chat, n in ran if chat == "held"] == list(range(worker.most_in_hand + 5))  # in order
    assert worker._room._value == worker.capacity  # every place given back once


async def test_one_chats_work_stays_in_order_and_one_at_a_time_across_consumers(redis_client):
    """Like process_chat_events: each job settles the chat's waiting messages oldest first up to its
    own; with the chat's lock across consumers, replies come out in order and each once."""
    settings = worker_settings()
    waiting: dict[str, list[int]] = {"chat-a": [], "chat-b": []}
    replies: dict[str, list[int]] = {"chat-a": [], "chat-b": []}
    inside: Counter[str] = Counter()
    overlaps: list[str] = []
    consumers = []
    for index in range(3):
        runner = JobRunner(settings, shared_locks=RedisKeyLocks(redis_client, ttl_s=2))

        def handler(args: dict, runner: JobRunner = runner) -> None:
            chat, up_to = args["chat"], args["n"]

            async def settle_chat() -> None:
                inside[chat] += 1
                if inside[chat] > 1:
                    overlaps.append(chat)
                try:
                    while waiting[chat] and waiting[chat][0] <= up_to:
                        message = waiting[chat][0]
                        await asyncio.sleep(0.002)  # the turn (a yield to the other consumers)
                        replies[chat].append(message)
                        waiting[chat].pop(0)
                finally:
                    inside[chat] -= 1
            runner.submit(chat, settle_chat)

        runner.register("message", handler)
        consumers.append(consumer(redis_client, runner, settings, f"worker-{index}"))
    for item in consumers:
        await item.ensure_group()
        await item.start()
    try:
        for n in range(60):
            chat = "chat-a" if n % 3 else "chat-b"
            waiting[chat].append(n)  # stored first, as the webhook edge does
            await publish(redis_client, "message", chat=chat, n=n)
        await wait_for(lambda: sum(item.acked for item in consumers) == 60)
    finally:
        for item in consumers:
            await item.stop()
    assert overlaps == []
    assert replies["chat-a"] == [n for n in range(60) if n % 3]
    assert replies["chat-b"] == [n for n in range(60) if not n % 3]
    assert sum(1 for item in consumers if item.acked) >= 2  # the chats' jobs did cross consumers


async def test_a_lock_left_by_a_killed_holder_frees_itself_and_a_held_one_is_renewed(redis_client):
    locks = RedisKeyLocks(redis_client, ttl_s=0.3)
    await redis_client.set("caredesk:lock:chat", "a killed worker", px=300)
    started = time.monotonic()
    async with locks.hold("chat"):
        waited = time.monotonic() - started
        await asyncio.sleep(0.6)  # twice the time to live: renewed meanwhile
        assert await redis_client.get("caredesk:lock:chat") is not None
    assert 0.2 < waited < 0.6
    assert await redis_client.get("caredesk:lock:chat") is None  # released


@pytest.mark.slow
async def test_leaving_a_lock_never_waits_on_its_renewal(redis_client):
    # Hundreds of short holds whose renewal (every 10 ms) is often in flight as the block ends: the
    # production-shape fault test lost a chat when the renewer outlived its cancellation (redis-py
    # lost it during a command) and the holder waited for it for ever, its chat's jobs behind it.
    locks = RedisKeyLocks(redis_client, ttl_s=0.03)
    for number in range(400):
        async def hold_briefly() -> None:
            async with locks.hold(f"brief:{number % 7}"):
                await asyncio.sleep(0.004 + (number % 10) * 0.001)
        try:
            await asyncio.wait_for(hold_briefly(), 5)
        except TimeoutError:
            pytest.fail(f"hold {number} did not end within 5 s of its block")
    assert [task for task in asyncio.all_tasks() if task.get_name().startswith("caredesk-lock-renew")] == []


async def test_a_job_failing_at_every_delivery_is_parked_and_acknowledged(redis_client):
    settings = worker_settings(claim_idle_s=0.2, max_job_deliveries=3)
    runner = JobRunner(settings)
    tries: list[int] = []

    def handler(args: dict) -> None:
        async def broken() -> None:
            tries.append(1)
            raise ValueError("a bug in the handler")
        runner.submit("chat", broken)

    runner.register("broken", handler)
    parked: list[PoisonJob] = []

    async def park(job: PoisonJob) -> None:
        parked.append(job)

    worker = consumer(redis_client, runner, settings, "worker", park=park)
    await worker.ensure_group()
    await worker.start()
    try:
        await publish(redis_client, "broken", order_id=5)
        await wait_for(lambda: parked, timeout=10)
        await wait_for(lambda: worker.acked == 1)
    finally:
        await worker.stop()
    assert len(tries) == 3
    assert (parked[0].name, parked[0].args, parked[0].deliveries) == ("broken", {"order_id": 5}, 3)
    assert "ValueError: a bug in the handler" in parked[0].error
    assert await pending_count(redis_client) == 0


async def test_run_job_waits_for_the_work_and_reports_a_failure_of_its_own():
    runner = JobRunner(worker_settings())
    done: list[str] = []

    async def fine() -> None:
        await asyncio.sleep(0.05)
        done.append("fine")

    async def broken() -> None:
        raise KeyError("missing")

    runner.register("fine", lambda _args: runner.submit("a", fine))
    runner.register("broken", lambda _args: runner.submit("b", broken))
    await runner.run_job("fine", {})
    assert done == ["fine"]
    with pytest.raises(JobFailed, match="KeyError"):
        await runner.run_job("broken", {})
    await runner.run_job("nobody handles this", {})  # logged and dropped, as before


async def test_parked_jobs_are_listed_for_admins_and_can_be_run_again_or_discarded(client):
    engine = client.wiring.engine
    for index in range(2):
        job = PoisonJob("drain_chat", {"channel": "cli", "recipient_id": f"r{index}"}, "ValueError: boom", 5,
                        f"1-{index}")
        await to_thread.run_sync(park_job, engine, job)
        await to_thread.run_sync(park_job, engine, job)  # a second worker parking the same entry
    headers = await client.login()
    assert (await client.get("/api/admin/parked-jobs")).status_code == 401
    listed = (await client.get("/api/admin/parked-jobs", headers=headers)).json()
    assert listed["count"] == 2
    newest = listed["data"][0]
    assert (newest["name"], newest["args"], newest["error"], newest["attempts"]) == (
        "drain_chat", {"channel": "cli", "recipient_id": "r1"}, "ValueError: boom", 5)
    retried = await client.post(f"/api/admin/parked-jobs/{newest['id']}/retry", headers=headers)
    assert retried.status_code == 202
    discarded = await client.delete(f"/api/admin/parked-jobs/{listed['data'][1]['id']}", headers=headers)
    assert discarded.status_code == 204
    assert (await client.get("/api/admin/parked-jobs", headers=headers)).json()["count"] == 0
    assert (await client.delete(f"/api/admin/parked-jobs/{newest['id']}", headers=headers)).status_code == 404


async def test_after_redis_restarts_empty_the_consumer_makes_its_group_again_and_asks_for_a_catch_up():
    """Redis killed and started without its data (no persistence): the stream and group are gone,
    jobs added meanwhile failed on the servers' side (their events wait in the database)."""
    from tests.faults.cluster import PrivateRedis

    server = PrivateRedis()
    server.start()
    client = aioredis.from_url(server.url, decode_responses=True)
    settings = worker_settings()
    runner = JobRunner(settings)
    ran: list[int] = []
    runner.register("count", lambda args: runner.submit("chat", lambda: _append(ran, args["n"])))
    catch_ups: list[int] = []
    worker = StreamConsumer(client, runner, settings, park=parked_nowhere, name="worker",
                            on_recovered=lambda: catch_ups.append(1), longest_pause_s=0.2)
    try:
        await worker.ensure_group()
        await worker.start()
        await publish(client, "count", n=1)
        await wait_for(lambda: ran == [1])
        server.kill()
        await asyncio.sleep(0.5)
        server.start()
        await wait_for(lambda: catch_ups, timeout=10)
        await publish(client, "count", n=2)
        await wait_for(lambda: ran == [1, 2], timeout=10)
    finally:
        await worker.stop()
        await client.aclose()
        server.remove()


async def _append(items: list[int], value: int) -> None:
    items.append(value)

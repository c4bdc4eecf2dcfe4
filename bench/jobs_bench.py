"""Named jobs through Redis: the stream with a consumer group (external mode now) against pub/sub (what
external mode used before), in the same run, on a private redis-server; and the takeover time of a
dead consumer's jobs.

Each job is what the channels' jobs are to the transport: a JSON object with a kind and a few
arguments, whose handler queues one piece of work on the job runner under a chat's key (here the
work only counts, so the figures are the transport's and the runner's cost, not the bot's).

  pubsub_jobs_per_s            published and run through pub/sub (one subscriber; nothing acknowledged)
  stream_jobs_per_s            added, read by one consumer, run, acknowledged after the work finished
  stream_3_consumers_jobs_per_s  the same shared by three consumers in this one process (one CPU:
                               the group's cost, not scaling)
  stream_with_chat_locks_jobs_per_s  one consumer whose runner holds each chat's lock in Redis
  takeover_s                   a consumer read 100 jobs and died (never acknowledged); the time until
                               a live one finished them, with CAREDESK_WORKER__CLAIM_IDLE_S=1

    .venv/bin/python bench/jobs_bench.py [--jobs 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from _harness import private_redis  # noqa: E402

from helpdesk.jobs.locks import RedisKeyLocks  # noqa: E402
from helpdesk.jobs.remote import JOBS_CHANNEL, follow_jobs  # noqa: E402
from helpdesk.jobs.runner import JobRunner  # noqa: E402
from helpdesk.jobs.streams import GROUP, STREAM, StreamConsumer, StreamPublisher  # noqa: E402

CHATS = 50


def settings(**overrides: float) -> SimpleNamespace:
    values = {"retry_base_s": 0.05, "retry_max_s": 1.0, "concurrency": 16, "claim_idle_s": 15.0,
              "max_job_deliveries": 5}
    values.update(overrides)
    return SimpleNamespace(**values)


def counting_runner(done: list[int], shared_locks: RedisKeyLocks | None = None) -> JobRunner:
    runner = JobRunner(settings(), concurrency=16, shared_locks=shared_locks)

    async def work() -> None:
        done.append(1)

    runner.register("inbound_event", lambda args: runner.submit(f"telegram:{args['sender_id']}", work))
    return runner


def job(n: int) -> str:
    return json.dumps({"kind": "inbound_event", "event_id": n, "channel": "telegram", "sender_id": str(n % CHATS)})


async def until(check, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit("the bench timed out")
        await asyncio.sleep(0.002)


async def pubsub_rate(url: str, jobs: int) -> float:
    publisher, subscriber = (aioredis.from_url(url, decode_responses=True) for _ in range(2))
    done: list[int] = []
    runner = counting_runner(done)

    async def nothing() -> None:
        return None

    following = await follow_jobs(subscriber, runner, on_resubscribed=nothing)
    await asyncio.sleep(0.2)
    started = time.perf_counter()
    for n in range(jobs):
        await publisher.publish(JOBS_CHANNEL, job(n))
    await until(lambda: len(done) >= jobs)
    took = time.perf_counter() - started
    following.cancel()
    await publisher.aclose()
    await subscriber.aclose()
    return jobs / took


async def stream_rate(url: str, jobs: int, consumers: int = 1, chat_locks: bool = False) -> float:
    publisher = aioredis.from_url(url, decode_responses=True)
    await publisher.delete(STREAM)
    clients = [aioredis.from_url(url, decode_responses=True) for _ in range(consumers)]
    done: list[int] = []

    async def park(_job) -> None:
        raise SystemExit("a bench job was parked")

    readers = [StreamConsumer(client, counting_runner(done, RedisKeyLocks(client) if chat_locks else None),
                              settings(), park=park, name=f"bench-{n}") for n, client in enumerate(clients)]
    for reader in readers:
        await reader.ensure_group()
        await reader.start()
    sender = StreamPublisher(publisher)
    started = time.perf_counter()
    for n in range(jobs):
        await sender.publish(JOBS_CHANNEL, job(n))
    await until(lambda: sum(reader.acked for reader in readers) >= jobs)
    took = time.perf_counter() - started
    for reader in readers:
        await reader.stop()
    for client in (publisher, *clients):
        await client.aclose()
    return jobs / took


async def takeover_time(url: str) -> float:
    client = aioredis.from_url(url, decode_responses=True)
    await client.delete(STREAM)
    done: list[int] = []
    survivor = StreamConsumer(client, counting_runner(done), settings(claim_idle_s=1.0), park=None,
                              name="survivor")
    await survivor.ensure_group()
    sender = StreamPublisher(client)
    for n in range(100):
        await sender.publish(JOBS_CHANNEL, job(n))
    await client.xreadgroup(GROUP, "dead", {STREAM: ">"}, count=100)  # read, then killed: never acked
    died = time.perf_counter()
    await survivor.start()
    await until(lambda: survivor.acked >= 100)
    took = time.perf_counter() - died
    await survivor.stop()
    await client.aclose()
    return took


async def main(jobs: int) -> None:
    with private_redis() as url:
        if url is None:
            raise SystemExit("redis-server is not installed")
        # pub/sub and the stream alternate, twice each, so a busy moment of the machine hits both
        pubsub, stream = [], []
        for _ in range(2):
            pubsub.append(await pubsub_rate(url, jobs))
            stream.append(await stream_rate(url, jobs))
        print(f"pubsub_jobs_per_s {max(pubsub):.0f}")
        print(f"stream_jobs_per_s {max(stream):.0f}")
        print(f"stream_3_consumers_jobs_per_s {await stream_rate(url, jobs, consumers=3):.0f}")
        print(f"stream_with_chat_locks_jobs_per_s {await stream_rate(url, jobs, chat_locks=True):.0f}")
        print(f"takeover_s {await takeover_time(url):.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    asyncio.run(main(parser.parse_args().jobs))

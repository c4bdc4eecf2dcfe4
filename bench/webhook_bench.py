"""Webhook edge and delivery under load, on the embedded default (SQLite, no Redis).

Starts `caredesk serve` in a subprocess against a loopback fake Telegram Bot API, then:
  1. baseline: GET /healthz at the target rate (same process, same moment: the machine's floor);
  2. acknowledgement: POST /webhooks/telegram at the target rate (default 300/s), open loop, with
     the CPU time per message of the server and of its message worker;
  3. delivery: N inbound messages (default 10,000, 5% redelivered) while the fake fails 10% of
     sendMessage calls with 502 and 2% with 429; then counts replies lost and duplicated.
Prints one figure a line: `name value`.

    .venv/bin/python bench/webhook_bench.py [--rate 300] [--seconds 20] [--messages 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from collections import Counter

from _harness import children_of, cpu_seconds, percentile, running_caredesk, telegram_update

QUESTION = "bảo hành bao lâu vậy shop"


async def open_loop(rate: float, count: int, make_request) -> list[float]:
    """Fire ``count`` requests at a fixed rate regardless of answers; latency of each (ms)."""
    latencies: list[float] = []
    failures: Counter[int] = Counter()

    async def one(index: int) -> None:
        started = time.perf_counter()
        async with make_request(index) as response:
            await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                failures[response.status] += 1

    tasks = []
    begin = time.perf_counter()
    for index in range(count):
        delay = begin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    if failures:
        print(f"non_200_responses {dict(failures)}")
    return latencies


async def wait_for_replies(fake, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.sent_messages()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def run(args: argparse.Namespace) -> None:
    retry_env = {"CAREDESK_OUTBOX__BASE_BACKOFF_S": "0.2", "CAREDESK_OUTBOX__MAX_BACKOFF_S": "2",
                 "CAREDESK_OUTBOX__MAX_ATTEMPTS": "30", "CAREDESK_OUTBOX__PUMP_INTERVAL_S": "0.2"}
    async with running_caredesk(retry_env) as harness:
        fake = harness.fake
        baseline = await open_loop(args.rate, int(args.rate * args.seconds / 2),
                                   lambda i: harness.http.get("/healthz"))
        print(f"healthz_p50_ms {statistics.median(baseline):.2f}")
        print(f"healthz_p99_ms {percentile(baseline, 0.99):.2f}")

        workers = children_of(harness.server_pid)
        server_cpu, worker_cpu = cpu_seconds(harness.server_pid), sum(map(cpu_seconds, workers))
        acks = await open_loop(args.rate, int(args.rate * args.seconds), lambda i: harness.webhook(
            telegram_update(i + 1, 10_000 + i % 500, QUESTION)))
        await wait_for_replies(fake, len(acks), timeout=300)
        server_cpu = cpu_seconds(harness.server_pid) - server_cpu
        worker_cpu = sum(map(cpu_seconds, workers)) - worker_cpu
        print(f"webhook_rate_per_s {args.rate:.0f}")
        print(f"webhook_ack_p50_ms {statistics.median(acks):.2f}")
        print(f"webhook_ack_p99_ms {percentile(acks, 0.99):.2f}")
        print(f"webhook_ack_p99_vs_healthz_p99 {percentile(acks, 0.99) / percentile(baseline, 0.99):.2f}")
        # CPU per message, from /proc: the other load on a shared machine distorts it far less than
        # latency. The server acknowledges; its child process (the message worker) answers.
        print(f"server_cpu_ms_per_webhook {server_cpu * 1000 / len(acks):.2f}")
        print(f"worker_cpu_ms_per_message {worker_cpu * 1000 / len(acks):.2f}")

        fake.reset()
        fake.chaos(server_errors=0.10, rate_limits=0.02, seed=7)
        expected: Counter[int] = Counter()
        updates = []
        for index in range(args.messages):
            chat_id = 50_000 + index % 1000
            expected[chat_id] += 1
            updates.append(telegram_update(10**6 + index, chat_id, QUESTION))
        traffic = updates + random.Random(11).sample(updates, k=args.messages // 20)
        started = time.perf_counter()
        await open_loop(args.rate, len(traffic), lambda i: harness.webhook(traffic[i]))
        await wait_for_replies(fake, args.messages, timeout=600)
        await asyncio.sleep(3)  # let any duplicate that would come, come
        replies = Counter(int(m["chat_id"]) for m in fake.sent_messages())
        print(f"delivery_messages {args.messages}")
        print(f"delivery_redelivered_webhooks {len(traffic) - len(updates)}")
        print(f"delivery_injected_failures {len(fake.calls_to('sendMessage')) - sum(replies.values())}")
        print(f"delivery_lost {sum(max(0, expected[c] - replies[c]) for c in expected)}")
        print(f"delivery_duplicated {sum(max(0, replies[c] - expected[c]) for c in replies)}")
        print(f"delivery_seconds {time.perf_counter() - started:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the acknowledgement run")
    parser.add_argument("--messages", type=int, default=10_000, help="inbound messages in the delivery run")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

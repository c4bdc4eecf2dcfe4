"""Webhook edge and delivery under load, on the embedded default (SQLite, no Redis).

Starts `caredesk serve` in a subprocess against a loopback fake Telegram Bot API, then:
  1. baseline: GET /healthz at the target rate (same process, same moment: the machine's floor);
  2. acknowledgement: POST /webhooks/telegram at the target rate (default 300/s), open loop;
  3. delivery: N inbound messages (default 10,000, 5% redelivered) while the fake fails 10% of
     sendMessage calls with 502 and 2% with 429; then counts replies lost and duplicated.
Prints one figure a line: `name value`.

    .venv/bin/python bench/webhook_bench.py [--rate 300] [--seconds 20] [--messages 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

SECRET = "bench-secret"
QUESTION = "bảo hành bao lâu vậy shop"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def update(update_id: int, chat_id: int) -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764000000, "text": QUESTION,
        "from": {"id": chat_id, "is_bot": False, "first_name": "Bench"},
        "chat": {"id": chat_id, "type": "private", "first_name": "Bench"}}}


async def open_loop(client, rate: float, seconds: float, make_request) -> list[float]:
    """Fire requests at a fixed rate regardless of answers; latency of each (ms)."""
    latencies: list[float] = []
    failures = Counter()

    async def one(index: int) -> None:
        started = time.perf_counter()
        async with make_request(index) as response:
            await response.read()
            latencies.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                failures[response.status] += 1

    tasks = []
    interval = 1.0 / rate
    begin = time.perf_counter()
    for index in range(int(rate * seconds)):
        delay = begin + index * interval - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index)))
    await asyncio.gather(*tasks)
    if failures:
        print(f"non_200_responses {dict(failures)}")
    return latencies


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="caredesk-bench-"))
    from nlu import ModelStore, load_training_data

    store = ModelStore(workdir / "models")
    store.activate(store.train_and_add(load_training_data([ROOT / "data" / "nlu"])))
    fake = FakeTelegramAPI(token="123456:BENCH").start()
    port = free_port()
    env = {**os.environ, "CAREDESK_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
           "CAREDESK_NLU__MODELS_DIR": str(workdir / "models"), "CAREDESK_TELEGRAM__TOKEN": fake.token,
           "CAREDESK_TELEGRAM__SECRET_TOKEN": SECRET, "CAREDESK_TELEGRAM__API_BASE": fake.base_url,
           "CAREDESK_LOG_LEVEL": "WARNING", "CAREDESK_OUTBOX__BASE_BACKOFF_S": "0.2",
           "CAREDESK_OUTBOX__MAX_BACKOFF_S": "2", "CAREDESK_OUTBOX__MAX_ATTEMPTS": "30",
           "CAREDESK_OUTBOX__PUMP_INTERVAL_S": "0.2"}
    server = subprocess.Popen([str(Path(sys.executable).with_name("caredesk")), "serve", "--port", str(port)],
                              env=env, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        # aiohttp rather than httpx on the client side: the load generator must cost less than the server.
        connector = aiohttp.TCPConnector(limit=200)
        async with aiohttp.ClientSession(base_url=base, connector=connector,
                                         timeout=aiohttp.ClientTimeout(total=60)) as client:
            for _ in range(300):
                try:
                    async with client.get("/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("server did not become ready: " + server.stderr.read().decode()[-2000:])
            headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}

            # 1. baseline
            baseline = await open_loop(client, args.rate, args.seconds / 2, lambda i: client.get("/healthz"))
            print(f"healthz_p50_ms {statistics.median(baseline):.2f}")
            print(f"healthz_p99_ms {percentile(baseline, 0.99):.2f}")

            # 2. acknowledgement latency of the webhook at the target rate
            next_id = iter(range(1, 10**9))
            acks = await open_loop(client, args.rate, args.seconds, lambda i: client.post(
                "/webhooks/telegram", json=update(next(next_id), 10_000 + i % 500), headers=headers))
            print(f"webhook_rate_per_s {args.rate}")
            print(f"webhook_ack_p50_ms {statistics.median(acks):.2f}")
            print(f"webhook_ack_p99_ms {percentile(acks, 0.99):.2f}")
            print(f"webhook_ack_p99_vs_healthz_p99 {percentile(acks, 0.99) / percentile(baseline, 0.99):.2f}")
            await wait_for_replies(fake, len(acks), timeout=300)

            # 3. delivery under platform failures
            fake.reset()
            fake.chaos(server_errors=0.10, rate_limits=0.02, seed=7)
            rng = random.Random(11)
            expected = Counter()
            first_id = 10**6
            sent_updates = []
            for index in range(args.messages):
                chat_id = 50_000 + index % 1000
                expected[chat_id] += 1
                sent_updates.append(update(first_id + index, chat_id))
            redeliveries = rng.sample(sent_updates, k=args.messages // 20)
            started = time.perf_counter()
            await open_loop(client, args.rate, len(sent_updates + redeliveries) / args.rate,
                            lambda i: client.post("/webhooks/telegram", json=(sent_updates + redeliveries)[i],
                                                  headers=headers))
            await wait_for_replies(fake, args.messages, timeout=600)
            await asyncio.sleep(3)  # let any duplicate that would come, come
            replies = Counter(int(m["chat_id"]) for m in fake.sent_messages())
            lost = sum(max(0, expected[c] - replies[c]) for c in expected)
            duplicated = sum(max(0, replies[c] - expected[c]) for c in replies)
            failed_calls = sum(1 for call in fake.calls_to("sendMessage")) - sum(replies.values())
            print(f"delivery_messages {args.messages}")
            print(f"delivery_redelivered_webhooks {len(redeliveries)}")
            print(f"delivery_injected_failures {failed_calls}")
            print(f"delivery_lost {lost}")
            print(f"delivery_duplicated {duplicated}")
            print(f"delivery_seconds {time.perf_counter() - started:.1f}")
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()


async def wait_for_replies(fake: FakeTelegramAPI, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(fake.sent_messages()) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the acknowledgement run")
    parser.add_argument("--messages", type=int, default=10_000, help="inbound messages in the delivery run")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

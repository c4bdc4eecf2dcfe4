"""Do downloads and thumbnails stay off the webhook's acknowledgement path?

Starts `caredesk serve` (SQLite, no Redis, its message worker in a child process) with Telegram on a
loopback fake Bot API and Messenger on a loopback fake Graph API, whose attachment URLs point at a
loopback web server (a process of its own) serving real JPEG photos (1600x1200, made with Pillow). Then:
  1. plain text messages on Telegram at a fixed rate, alone: their webhook ack latencies;
  2. the same text load while a burst of photo messages (default 200) arrives on Messenger, each
     photo then fetched, checked, stored and thumbnailed by the worker: the text acks again;
and prints one figure a line (`name value`): both p99s, their ratio (target: at most 1.2), the
photos' own ack p99, and how long the photos took to be stored.

    .venv/bin/python bench/attachments_bench.py [--rate 40] [--seconds 15] [--photos 200]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _harness import free_port, percentile, running_caredesk, telegram_update

from tests.fakes.facebook_api import FakeGraphAPI, sign

QUESTION = "bảo hành bao lâu vậy shop"
APP_SECRET = "bench-app-secret"
PAGE_ID = "104857600123456"
PAGE_TOKEN = "EAAG-bench-page-token"
#: distinct photos made (each served under many names: making 200 would cost the bench, not the server)
DISTINCT_PHOTOS = 10


def photo(seed: int) -> bytes:
    """A 1600x1200 JPEG with enough detail to be the size of a phone photo."""
    from PIL import Image

    image = Image.effect_noise((1600, 1200), 40 + seed).convert("RGB")
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def messenger_photo(index: int, url: str) -> bytes:
    """A Messenger webhook body: one customer's message with one photo."""
    return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": 1764000000000, "messaging": [{
        "sender": {"id": f"9{index:015d}"}, "recipient": {"id": PAGE_ID}, "timestamp": 1764000000000,
        "message": {"mid": f"m_photo_{index}", "attachments": [{"type": "image", "payload": {"url": url}}]}}]}]}
    ).encode()


async def timed_post(make_request) -> float:
    started = time.perf_counter()
    async with make_request() as response:
        await response.read()
        if response.status != 200:
            raise SystemExit(f"a webhook was answered {response.status}")
    return (time.perf_counter() - started) * 1000


async def text_load(harness, rate: float, seconds: float, first_id: int) -> list[float]:
    """Telegram text messages at ``rate`` per second, open loop; each one's ack latency (ms)."""
    count, tasks = int(rate * seconds), []
    begin = time.perf_counter()
    for index in range(count):
        delay = begin + index / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        update = telegram_update(first_id + index, 20_000 + index % 300, QUESTION)
        tasks.append(asyncio.create_task(timed_post(lambda update=update: harness.webhook(update))))
    return list(await asyncio.gather(*tasks))


async def photo_burst(harness, urls: list[str], spread_s: float) -> list[float]:
    """The photo messages, spread evenly over ``spread_s`` seconds; each one's ack latency (ms)."""
    tasks = []
    begin = time.perf_counter()
    for index, url in enumerate(urls):
        delay = begin + index * spread_s / len(urls) - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body = messenger_photo(index, url)
        headers = {"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Type": "application/json"}
        tasks.append(asyncio.create_task(timed_post(
            lambda body=body, headers=headers: harness.http.post("/webhooks/facebook", data=body, headers=headers))))
    return list(await asyncio.gather(*tasks))


@contextmanager
def cdn(photos: list[bytes], count: int) -> Iterator[list[str]]:
    """The photos served by a web server in a process of its own (``python -m http.server``): serving
    some 200 MB from this process would hold up the load generator, and the latencies it measures."""
    folder = Path(tempfile.mkdtemp(prefix="caredesk-bench-cdn-"))
    for n in range(count):
        (folder / f"photo-{n}.jpg").write_bytes(photos[n % len(photos)])
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the bench's file server did not start") from None
                time.sleep(0.05)
        yield [f"http://127.0.0.1:{port}/photo-{n}.jpg" for n in range(count)]
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def stored_photos(database: Path) -> int:
    import sqlite3

    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT count(*) FROM attachments WHERE status != 'pending'").fetchone()[0]


async def run(args: argparse.Namespace) -> None:
    photos = [photo(seed) for seed in range(DISTINCT_PHOTOS)]
    with cdn(photos, args.photos) as urls, FakeGraphAPI(page_access_token=PAGE_TOKEN, page_id=PAGE_ID) as graph:
        env = {"CAREDESK_FACEBOOK__APP_SECRET": APP_SECRET, "CAREDESK_FACEBOOK__VERIFY_TOKEN": "bench",
               "CAREDESK_FACEBOOK__PAGE_ACCESS_TOKEN": PAGE_TOKEN, "CAREDESK_FACEBOOK__GRAPH_API_BASE": graph.base_url}
        async with running_caredesk(env) as harness:
            env_storage = harness.workdir / "var" / "attachments"
            await text_load(harness, args.rate, 5, first_id=1)  # warm-up: model loaded, connections made
            alone = await text_load(harness, args.rate, args.seconds, first_id=100_000)
            started = time.perf_counter()
            during, photo_acks = await asyncio.gather(
                text_load(harness, args.rate, args.seconds, first_id=200_000),
                photo_burst(harness, urls, spread_s=min(args.seconds / 2, 5.0)))
            database = harness.workdir / "bench.db"
            while stored_photos(database) < args.photos and time.perf_counter() - started < 600:
                await asyncio.sleep(0.5)
            stored_after = time.perf_counter() - started
            done = stored_photos(database)
            # the machine is shared: the text load alone once more, after the photos, and the ratio
            # taken against the lower of the two (the stricter reading)
            after = await text_load(harness, args.rate, args.seconds, first_id=300_000)
    alone_p99 = min(percentile(alone, 0.99), percentile(after, 0.99))
    during_p99 = percentile(during, 0.99)
    print(f"text_ack_p99_alone_before_ms {percentile(alone, 0.99):.2f}")
    print(f"text_ack_p99_alone_after_ms {percentile(after, 0.99):.2f}")
    print(f"text_rate_per_s {args.rate:.0f}")
    print(f"photos {args.photos}")
    print(f"photo_bytes_mean {statistics.mean(map(len, photos)):.0f}")
    print(f"text_ack_p50_alone_ms {min(statistics.median(alone), statistics.median(after)):.2f}")
    print(f"text_ack_p99_alone_ms {alone_p99:.2f}")
    print(f"text_ack_p50_during_photos_ms {statistics.median(during):.2f}")
    print(f"text_ack_p99_during_photos_ms {during_p99:.2f}")
    print(f"text_ack_p99_ratio {during_p99 / alone_p99:.2f}")
    print(f"photo_ack_p99_ms {percentile(photo_acks, 0.99):.2f}")
    print(f"photos_settled {done}")
    print(f"photos_settled_after_s {stored_after:.1f}")
    print(f"attachments_dir_exists {int(env_storage.exists())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40.0, help="text messages per second")
    parser.add_argument("--seconds", type=float, default=15.0, help="length of each text phase")
    parser.add_argument("--photos", type=int, default=200, help="photo messages in the burst")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

"""Do downloads and thumbnails stay off the webhook's acknowledgement path?

Starts `caredesk serve` (SQLite, no Redis, its message worker in a child process) with Telegram on a
loopback fake Bot API, and Messenger on a loopback fake Graph API. Real JPEG photos (made with
Pillow) come either from the fake Bot API through getFile (1280x960, as Telegram re-encodes them),
when the Telegram connector and its fake can serve files, or else as Messenger attachment URLs on a
loopback web server in a process of its own (1600x1200). The fake Bot API runs in a process of its
own too (``--fake-in-process`` keeps it in the bench's), so the load generator's process only sends and
times requests. Then:
  1. plain text messages on Telegram at a fixed rate (40/s), alone: their webhook ack latencies;
  2. the same text messages while a burst of photo messages (default 200, over 5 s) arrives, each
     photo then fetched, checked, stored and thumbnailed by the worker: the text acks again;
  3. with ``--control``, in the same round and the same process, 1 and 2 again with a burst of as many
     plain text messages at the same rate instead of photos (the order of the two swapped every
     round): the requests' own cost, told from the files' (``--control-only``: the text burst alone);
  all repeated for a few rounds (the machine is shared: one reading of each says little);
and prints one figure a line (`name value`): each round's p99s, their medians and ratio, the phases'
acks of every round pooled into one p99 and its ratio (``pooled_*``, the steadier figure: a round's
p99 of 400 acks is its 4th slowest; target: at most 1.2), the photos' own ack p99, how long a burst
took to be stored, and the server's own view of the acks (``caredesk_webhook_ack_seconds`` of
/metrics: its mean, and the bucket its p99 falls in) to tell the server's time from the wire's.

When the messages leave (``--arrivals``). Customers write independently of one another, so by default
the text messages and the burst's arrive as Poisson processes (seeded by round: a round's text
arrivals are the same alone and during its burst, only the burst differs). ``--arrivals even`` spaces
both evenly, as this bench did before: at the same rate and started together, every burst message then
left within microseconds of a text message, and the text's ack waited for the other request whenever
the server read that one first, against a baseline in which no two requests ever met. That measured one
request's service time on the web process, not the files' cost: 200 texts instead of photos raised it
too, and starting the burst half a period later (``--burst-offset-ms 12.5``) took the photos' ratio
from 1.33 to 1.06 (external worker, 2 processors, 6 rounds each, the same hour; texts 1.18 and 1.16).
With Poisson arrivals, the same shape, three runs: photos 0.98, 1.00, 0.95 (texts 1.00, 0.94, 1.02).

Where it runs. The load generator and the fakes run on the first processor and the server (its worker
child too) on the others, as the platforms send from machines of their own (``--no-split-cpus``: all
share them). ``--idle-worker`` puts the worker child in the SCHED_IDLE class
(``CAREDESK_WORKER__IDLE_CLASS``, off by default: such a worker waits whenever anything else keeps the
processors busy); by default it runs at nice 10 beside the web process. ``--external-worker`` measures
the production shape instead: the server in external mode (a Redis of the bench's own) and a separate
``caredesk worker`` on processors other than the web process's (the third and later; on two, the first,
beside the load generator, which then runs in SCHED_FIFO so the worker does not delay the instrument).
``common_baseline_*`` divides by the p99 of every round's text-alone phases of both kinds together;
``server_cpu_ms_per_burst_message`` is the serving process's own CPU for a burst's message beyond its
text load's.

    .venv/bin/python bench/attachments_bench.py [--rate 40] [--seconds 10] [--photos 200] [--rounds 3] [--control]
        [--idle-worker | --external-worker] [--arrivals poisson|even] [--burst-offset-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from _harness import (ROOT, children_of, cpu_seconds, free_port, percentile, private_redis,
                      running_caredesk, telegram_update, wait_for_port)

from tests.fakes.facebook_api import FakeGraphAPI, sign
from tests.fakes.telegram_api import FakeTelegramAPI

QUESTION = "bảo hành bao lâu vậy shop"
APP_SECRET = "bench-app-secret"
#: the bot token of the harness's fake (the server is configured with it)
BOT_TOKEN = "123456:BENCH"
PAGE_ID = "104857600123456"
PAGE_TOKEN = "EAAG-bench-page-token"
#: distinct photos made (each served under many names: making 200 would cost the bench, not the server)
DISTINCT_PHOTOS = 10


def photo(seed: int, size: tuple[int, int]) -> bytes:
    """A JPEG with enough detail to weigh what a phone photo does at that size."""
    from PIL import Image

    noise = Image.effect_noise(size, 8 + seed).convert("RGB")
    image = Image.blend(noise, Image.linear_gradient("L").resize(size).convert("RGB"), 0.5)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def telegram_photo(update_id: int, chat_id: int, file_id: str, size: int) -> dict:
    """A private-chat photo update as Telegram posts it (its largest size; Telegram re-encodes photos
    to at most 1280 pixels a side)."""
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764000000,
        "photo": [{"file_id": file_id, "file_unique_id": f"u{update_id}", "width": 1280, "height": 960,
                   "file_size": size}],
        "from": {"id": chat_id, "is_bot": False, "first_name": "Bench"},
        "chat": {"id": chat_id, "type": "private", "first_name": "Bench"}}}


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


def arrivals(count: int, span_s: float, seed: int | None) -> list[float]:
    """When each of ``count`` requests is sent, in seconds from the start: evenly spaced (``seed`` None),
    or the arrivals of a Poisson process of that many in ``span_s`` (sorted uniform times), as
    customers who write independently of one another arrive."""
    if seed is None:
        return [index * span_s / count for index in range(count)]
    rng = random.Random(seed)
    return sorted(rng.uniform(0, span_s) for _ in range(count))


async def send_at(times: list[float], make_requests: list) -> list[float]:
    """Each request (a maker) sent at its time (open loop); each one's ack latency (ms)."""
    tasks = []
    begin = time.perf_counter()
    for at, make_request in zip(times, make_requests, strict=True):
        delay = begin + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(timed_post(make_request)))
    return list(await asyncio.gather(*tasks))


async def text_load(harness, rate: float, seconds: float, first_id: int, seed: int | None = None) -> list[float]:
    """Telegram text messages at ``rate`` per second (evenly, or Poisson arrivals drawn from ``seed``),
    open loop; each one's ack latency (ms)."""
    count = int(rate * seconds)
    updates = [telegram_update(first_id + index, 20_000 + index % 300, QUESTION) for index in range(count)]
    return await send_at(arrivals(count, seconds, seed),
                         [lambda update=update: harness.webhook(update) for update in updates])


async def photo_burst(requests: list, spread_s: float, seed: int | None = None, offset_s: float = 0.0) -> list[float]:
    """The photo messages (request makers) over ``spread_s`` seconds (evenly, or Poisson arrivals
    drawn from ``seed``), the first ``offset_s`` after the text load's; each one's ack latency (ms)."""
    return await send_at([offset_s + at for at in arrivals(len(requests), spread_s, seed)], requests)


def messenger_requests(harness, urls: list[str]) -> list:
    """POSTs of Messenger photo messages whose URLs point at the CDN."""
    made = []
    for index, url in enumerate(urls):
        body = messenger_photo(index, url)
        headers = {"X-Hub-Signature-256": sign(body, APP_SECRET), "Content-Type": "application/json"}
        made.append(lambda body=body, headers=headers: harness.http.post("/webhooks/facebook", data=body,
                                                                           headers=headers))
    return made


def telegram_requests(harness, photos: list[bytes], count: int, fake_in_process: bool) -> list:
    """POSTs of Telegram photo updates, each photo served by the fake Bot API through getFile (the
    harness's fake, or the one in a process of its own, which serves ``bench-photo-<n>``)."""
    made = []
    for index in range(count):
        data = photos[index % len(photos)]
        if fake_in_process:
            file_id = harness.fake.add_file(data, file_path=f"photos/file_{index}.jpg")
        else:
            file_id = f"bench-photo-{index}"
        update = telegram_photo(500_000 + index, 40_000 + index, file_id, len(data))
        made.append(lambda update=update: harness.webhook(update))
    return made


@contextmanager
def fake_telegram_process(photos: list[bytes], count: int) -> Iterator[str]:
    """A fake Bot API (the harness's kind, same token) in a process of its own, serving ``count``
    photos as ``bench-photo-<n>`` through getFile; its base URL. The server's replies go there too."""
    folder = Path(tempfile.mkdtemp(prefix="caredesk-bench-photos-"))
    for n, data in enumerate(photos):
        (folder / f"{n}.jpg").write_bytes(data)
    server = subprocess.Popen([sys.executable, __file__, "--serve-fake-telegram", str(folder), str(count)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        line = server.stdout.readline().decode().strip()
        if not line.startswith("http://"):
            raise SystemExit("the fake Bot API's process did not start")
        yield line
    finally:
        server.stdin.close()  # it stops when its stdin closes
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        shutil.rmtree(folder, ignore_errors=True)


def serve_fake_telegram(folder: str, count: int) -> None:
    """The body of ``fake_telegram_process``: serve, print the base URL, stop when stdin closes."""
    photos = [path.read_bytes() for path in sorted(Path(folder).glob("*.jpg"), key=lambda p: int(p.stem))]
    fake = FakeTelegramAPI(token=BOT_TOKEN).start()
    for index in range(count):
        fake.add_file(photos[index % len(photos)], file_path=f"photos/file_{index}.jpg",
                      file_id=f"bench-photo-{index}")
    print(fake.base_url, flush=True)
    sys.stdin.read()
    fake.stop()


async def server_acks(harness) -> dict[str, float]:
    """The server's Telegram ack histogram from /metrics: ``count``, ``sum`` and each bucket ``le``."""
    async with harness.http.get("/metrics") as response:
        text = await response.text()
    found: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("caredesk_webhook_ack_seconds") or 'channel="telegram"' not in line:
            continue
        name, value = line.rsplit(" ", 1)
        bucket = re.search(r'le="([^"]+)"', name)
        key = bucket.group(1) if bucket else name.split("{", 1)[0].rsplit("_", 1)[1]
        found[key] = found.get(key, 0.0) + float(value)
    return found


def server_ack_figures(before: dict[str, float], after: dict[str, float]) -> tuple[float, float]:
    """The mean (ms) and the upper bound of the p99's bucket (ms) of the acks between two scrapes."""
    count = after.get("count", 0.0) - before.get("count", 0.0)
    if count <= 0:
        return 0.0, 0.0
    mean = (after.get("sum", 0.0) - before.get("sum", 0.0)) / count * 1000
    bounds = sorted((float(le), after[le] - before.get(le, 0.0)) for le in after
                    if le not in ("count", "sum", "created") and le != "+Inf")
    for bound, under in bounds:
        if under >= 0.99 * count:
            return mean, bound * 1000
    return mean, float("inf")


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
        wait_for_port(port, server, "the bench's file server")
        yield [f"http://127.0.0.1:{port}/photo-{n}.jpg" for n in range(count)]
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def stored_photos(database: Path) -> int:
    import sqlite3

    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT count(*) FROM attachments WHERE status != 'pending'").fetchone()[0]


def pooled_p99(rows: list[dict], phase: str) -> float:
    """The p99 of one phase's text acks (``alone`` or ``during``) of every round together."""
    return percentile([ms for row in rows for ms in row[phase]], 0.99)


def summary(label: str, rows: list[dict]) -> None:
    """One burst kind's figures over its rounds (medians: the machine is shared), ``label`` prefixed."""
    def med(key: str) -> float:
        return statistics.median(row[key] for row in rows)

    alone_p99, during_p99 = med("alone_p99"), med("during_p99")
    print(f"{label}text_ack_p50_alone_ms {med('alone_p50'):.2f}")
    print(f"{label}text_ack_p50_during_burst_ms {med('during_p50'):.2f}")
    print(f"{label}text_ack_p99_alone_ms {alone_p99:.2f}")
    print(f"{label}text_ack_p99_during_burst_ms {during_p99:.2f}")
    print(f"{label}text_ack_p99_ratio {during_p99 / alone_p99:.2f}")
    print(f"{label}text_ack_p99_ratio_per_round " + " ".join(f"{r['during_p99'] / r['alone_p99']:.2f}" for r in rows))
    # every round's acks pooled: a p99 of a few hundred acks is its 4th slowest, of all rounds' a
    # steadier figure (the per-round ratios above scatter 0.6-2.5 on this shared machine)
    pooled_alone, pooled_during = pooled_p99(rows, "alone"), pooled_p99(rows, "during")
    print(f"{label}pooled_text_acks_per_phase {sum(len(row['alone']) for row in rows)}")
    print(f"{label}pooled_text_ack_p99_alone_ms {pooled_alone:.2f}")
    print(f"{label}pooled_text_ack_p99_during_burst_ms {pooled_during:.2f}")
    print(f"{label}pooled_text_ack_p99_ratio {pooled_during / pooled_alone:.2f}")
    print(f"{label}burst_ack_p99_ms {med('burst_p99'):.2f}")
    print(f"{label}server_ack_mean_alone_ms {med('server_alone_mean'):.2f}")
    print(f"{label}server_ack_mean_during_burst_ms {med('server_during_mean'):.2f}")
    print(f"{label}server_ack_mean_ratio {med('server_during_mean') / med('server_alone_mean'):.2f}")
    print(f"{label}server_ack_p99_bucket_alone_ms {med('server_alone_p99'):.1f}")
    print(f"{label}server_ack_p99_bucket_during_burst_ms {med('server_during_p99'):.1f}")
    print(f"{label}burst_settled_after_s {med('settled_s'):.1f}")
    print(f"{label}server_cpu_ms_per_burst_message {med('server_cpu_per_burst_ms'):.2f}")


def worker_class(server_pid: int) -> str:
    """The scheduling class of the server's worker child (``idle`` or ``other``)."""
    children = children_of(server_pid)
    if not children:
        raise SystemExit("the server has no worker child")
    return "idle" if os.sched_getscheduler(children[0]) == os.SCHED_IDLE else "other"


def external_layout(args: argparse.Namespace) -> tuple[set[int], set[int], str]:
    """With ``--external-worker``: the processors of the server (its web process alone) and of the
    separate ``caredesk worker``, and how the load generator is scheduled. Three processors or more: the
    load generator and the fakes on the first, the server on the second, the worker on the rest, as
    in production (the worker a replica of its own). Two: the worker shares the first with the load
    generator, which then runs in the SCHED_FIFO class (where allowed) so the worker's CPU does not
    delay the instrument, only the fakes and Redis beside it."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--external-worker needs two processors or more")
    os.sched_setaffinity(0, {cpus[0]})
    if len(cpus) >= 3:
        return {cpus[1]}, set(cpus[2:]), "other"
    try:
        # reset on fork: the fakes and Redis this process starts stay in the normal class
        os.sched_setscheduler(0, os.SCHED_FIFO | os.SCHED_RESET_ON_FORK, os.sched_param(10))
        instrument = "fifo"
    except PermissionError:
        instrument = "other (SCHED_FIFO not allowed: the worker's CPU delays the instrument)"
    return {cpus[1]}, {cpus[0]}, instrument


def split_cpus(args: argparse.Namespace) -> set[int] | None:
    """With ``--split-cpus`` (the default where there are two processors or more): this process, so
    the load generator and the fake platforms it starts, on the first processor, the server on the
    others. The platforms send from their own machines; on the server's processors the load generator's
    own scheduling delays would be timed as the server's (a 200-text control burst alone read 0.82-2.28
    round to round with them shared). Returns the server's processors (None: shared)."""
    cpus = sorted(os.sched_getaffinity(0))
    if not args.split_cpus or len(cpus) < 2:
        return None
    os.sched_setaffinity(0, {cpus[0]})
    return set(cpus[1:])


async def run(args: argparse.Namespace) -> None:
    worker_cpus, instrument = None, "other"
    if args.external_worker:
        server_cpus, worker_cpus, instrument = external_layout(args)
    else:
        server_cpus = split_cpus(args)
    telegram = args.platform == "telegram" or (args.platform == "auto" and hasattr(FakeTelegramAPI, "add_file"))
    size = (1280, 960) if telegram else (1600, 1200)
    photos = [photo(seed, size) for seed in range(DISTINCT_PHOTOS)]
    total = args.photos * args.rounds
    rows: dict[str, list[dict]] = {"photos": [], "control": []}
    own_fake = telegram and not args.fake_in_process
    with cdn(photos, 0 if telegram else total) as urls, \
            FakeGraphAPI(page_access_token=PAGE_TOKEN, page_id=PAGE_ID) as graph, \
            (fake_telegram_process(photos, total) if own_fake else nullcontext(None)) as telegram_base, \
            (private_redis() if args.external_worker else nullcontext(None)) as redis_url:
        env = {"CAREDESK_FACEBOOK__APP_SECRET": APP_SECRET, "CAREDESK_FACEBOOK__VERIFY_TOKEN": "bench",
               "CAREDESK_FACEBOOK__PAGE_ACCESS_TOKEN": PAGE_TOKEN, "CAREDESK_FACEBOOK__GRAPH_API_BASE": graph.base_url}
        if telegram_base:
            env["CAREDESK_TELEGRAM__API_BASE"] = telegram_base
        if args.idle_worker:
            env["CAREDESK_WORKER__IDLE_CLASS"] = "true"
        if args.external_worker:
            if redis_url is None:
                raise SystemExit("--external-worker needs redis-server (apt-get install redis-server)")
            env.update({"CAREDESK_REDIS_URL": redis_url, "CAREDESK_WORKER__MODE": "external"})
        async with running_caredesk(env, server_cpus=server_cpus, worker_cpus=worker_cpus) as harness:
            database = harness.workdir / "bench.db"
            await text_load(harness, args.rate, 5, first_id=1)  # warm-up: model loaded, connections made
            scheduling = "external" if args.external_worker else worker_class(harness.server_pid)
            # the same number of requests at the same rate, as plain texts: what the requests alone cost
            bursts = {"control": [lambda update=telegram_update(700_000 + n, 60_000 + n, QUESTION):
                                  harness.webhook(update) for n in range(total)]}
            if not args.control_only:
                bursts["photos"] = (telegram_requests(harness, photos, total, fake_in_process=not own_fake)
                                    if telegram else messenger_requests(harness, urls))
            if not args.control and not args.control_only:
                del bursts["control"]
            stored_so_far = 0
            # rounds of "alone" then "during a burst": the machine is shared, so one of each says little;
            # with --control each round runs both kinds, their order swapped every round, so a drift in
            # the machine's load falls on both alike
            for round_ in range(args.rounds):
                kinds = sorted(bursts, reverse=round_ % 2 == 0)
                for number, kind in enumerate(kinds):
                    base = 1_000_000 * (2 * round_ + number + 1)
                    scraped = await server_acks(harness)
                    cpu_before = cpu_seconds(harness.server_pid)
                    # Poisson: the same text arrivals in both phases of a round (only the burst differs),
                    # the burst's drawn apart from them
                    text_seed, burst_seed = ((None, None) if args.arrivals == "even"
                                             else (round_, 1000 + round_))
                    alone = await text_load(harness, args.rate, args.seconds, first_id=base, seed=text_seed)
                    cpu_alone = cpu_seconds(harness.server_pid) - cpu_before
                    between = await server_acks(harness)
                    started = time.perf_counter()
                    burst = bursts[kind][round_ * args.photos:(round_ + 1) * args.photos]
                    during, burst_acks = await asyncio.gather(
                        text_load(harness, args.rate, args.seconds, first_id=base + 500_000, seed=text_seed),
                        photo_burst(burst, spread_s=min(args.seconds / 2, 5.0), seed=burst_seed,
                                    offset_s=args.burst_offset_ms / 1000))
                    after = await server_acks(harness)
                    # the serving process's own CPU (its worker child's is not in it) beyond a text phase's
                    cpu_extra = cpu_seconds(harness.server_pid) - cpu_before - 2 * cpu_alone
                    if kind == "photos":
                        stored_so_far += args.photos
                    while stored_photos(database) < stored_so_far and time.perf_counter() - started < 600:
                        await asyncio.sleep(0.5)
                    (alone_mean, alone_bucket), (during_mean, during_bucket) = (
                        server_ack_figures(scraped, between), server_ack_figures(between, after))
                    rows[kind].append({
                        "alone_p99": percentile(alone, 0.99), "during_p99": percentile(during, 0.99),
                        "alone_p50": statistics.median(alone), "during_p50": statistics.median(during),
                        "burst_p99": percentile(burst_acks, 0.99), "settled_s": time.perf_counter() - started,
                        "server_alone_mean": alone_mean, "server_during_mean": during_mean,
                        "server_alone_p99": alone_bucket, "server_during_p99": during_bucket,
                        "alone": alone, "during": during, "server_cpu_per_burst_ms": cpu_extra / len(burst) * 1000})
                    row = rows[kind][-1]
                    print(f"round_{round_ + 1}_{kind}_text_ack_p99_alone_ms {row['alone_p99']:.2f}")
                    print(f"round_{round_ + 1}_{kind}_text_ack_p99_during_burst_ms {row['during_p99']:.2f}")
                    print(f"round_{round_ + 1}_{kind}_server_ack_mean_alone_ms {alone_mean:.2f}")
                    print(f"round_{round_ + 1}_{kind}_server_ack_mean_during_burst_ms {during_mean:.2f}", flush=True)
            done = stored_photos(database)
            stored_dir = harness.workdir / "var" / "attachments"
            stored_files = sum(1 for path in stored_dir.rglob("*") if path.is_file())
    print(f"photos_from {'telegram' if telegram else 'messenger'}")
    print(f"worker_scheduling_class {scheduling}")
    print(f"server_cpus {','.join(map(str, sorted(server_cpus))) if server_cpus else 'shared'}")
    if worker_cpus is not None:
        print(f"worker_cpus {','.join(map(str, sorted(worker_cpus)))}")
        print(f"load_generator_class {instrument}")
    print(f"arrivals {args.arrivals}")
    print(f"burst_offset_ms {args.burst_offset_ms:g}")
    print(f"text_rate_per_s {args.rate:.0f}")
    print(f"burst_messages {args.photos}")
    print(f"rounds {args.rounds}")
    print(f"photo_bytes_mean {statistics.mean(map(len, photos)):.0f}")
    print(f"load_average_1m_at_end {os.getloadavg()[0]:.2f}")
    for kind in sorted(bursts, reverse=True):
        summary(f"{kind}_" if len(bursts) > 1 else "", rows[kind])
    if len(bursts) > 1:
        # the photos' cost beyond their requests': 1.00 means a photo costs the text acks what a text does
        photo_ratio = statistics.median(r["during_p99"] / r["alone_p99"] for r in rows["photos"])
        control_ratio = statistics.median(r["during_p99"] / r["alone_p99"] for r in rows["control"])
        print(f"photos_over_control_p99_ratio {photo_ratio / control_ratio:.2f}")
        photo_pooled, control_pooled = (pooled_p99(rows[kind], "during") / pooled_p99(rows[kind], "alone")
                                        for kind in ("photos", "control"))
        print(f"photos_over_control_pooled_p99_ratio {photo_pooled / control_pooled:.2f}")
        # the text-alone phases of both kinds are one experiment: pooled together they make a steadier
        # baseline than either kind's (its p99's own scatter moved the ratios above by ±0.15)
        baseline = percentile([ms for kind in ("photos", "control") for row in rows[kind] for ms in row["alone"]], 0.99)
        print(f"common_baseline_text_ack_p99_ms {baseline:.2f}")
        for kind in ("photos", "control"):
            print(f"{kind}_during_over_common_baseline_p99_ratio {pooled_p99(rows[kind], 'during') / baseline:.2f}")
        print(f"photos_over_control_server_ack_mean "
              f"{statistics.median(r['server_during_mean'] for r in rows['photos']) / statistics.median(r['server_during_mean'] for r in rows['control']):.2f}")
    print(f"photos_settled {done}")
    print(f"photos_stored_files {stored_files}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=40.0, help="text messages per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each text phase")
    parser.add_argument("--photos", type=int, default=200, help="photo messages in a burst")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of text alone, then text during a burst")
    parser.add_argument("--control", action="store_true",
                        help="each round also bursts as many plain text messages at the same rate (photo "
                             "and text bursts interleaved), to tell the requests' own cost from the files'")
    parser.add_argument("--control-only", action="store_true",
                        help="burst plain text messages only (no photos)")
    parser.add_argument("--platform", choices=("auto", "telegram", "messenger"), default="auto",
                        help="where the photos come from: Telegram (getFile on the fake Bot API) when its "
                             "connector and fake can serve files (auto), or Messenger (URLs on a CDN)")
    parser.add_argument("--fake-in-process", action="store_true",
                        help="run the fake Bot API in the bench's own process (as before: it then serves "
                             "the photos from the load generator's process, which delays its requests)")
    parser.add_argument("--split-cpus", action=argparse.BooleanOptionalAction, default=True,
                        help="the load generator and fakes on the first processor, the server on the others "
                             "(default where there are 2 or more; --no-split-cpus shares them all)")
    parser.add_argument("--idle-worker", action="store_true",
                        help="the server's message worker child in the SCHED_IDLE class "
                             "(CAREDESK_WORKER__IDLE_CLASS=true; off by default: see the module's docstring)")
    parser.add_argument("--external-worker", action="store_true",
                        help="the production shape: the server in external mode (a Redis of the bench's "
                             "own) and a separate `caredesk worker` on processors other than the web "
                             "process's (see external_layout)")
    parser.add_argument("--arrivals", choices=("poisson", "even"), default="poisson",
                        help="when the messages are sent: evenly spaced, or as a Poisson process (seeded "
                             "by round, the same text arrivals alone and during the burst)")
    parser.add_argument("--burst-offset-ms", type=float, default=0.0,
                        help="start the burst this long after the text load (with even arrivals at the "
                             "same rate, each burst message otherwise leaves with a text message)")
    parser.add_argument("--serve-fake-telegram", nargs=2, metavar=("FOLDER", "COUNT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake_telegram:
        serve_fake_telegram(args.serve_fake_telegram[0], int(args.serve_fake_telegram[1]))
        return
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

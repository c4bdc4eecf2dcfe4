"""The CPU a webhook's acknowledgement costs the serving process, measured inside it.

Builds the app as `caredesk serve` does in external mode (SQLite, a trained model, a Redis of the
bench's own carrying the jobs to workers, none running: only the acknowledgement is measured) and
calls it as an ASGI application, without sockets, so the figure is the app's own work on the event loop:
verify, parse, store in the ledger, hand the job to the stream, answer. The baseline, in the same
process and the same rounds, is ``GET /healthz`` through the same middleware. Prints one figure a line:
the median over rounds of the CPU per request of each, and their ratio.

On the 2-CPU machine: 0.60 ms a webhook (14.1x a /healthz) before the webhook routes were matched first
and the ledger's insert ran through the SQLite driver (``channels.edge.DriverInsert``), 0.43 ms (10.1x)
with both; 0.37-0.39 ms (8.7-9.3x) with the webhook's dependencies in one (``WebhookIntake``) and the
edge keeping its ledger connection between batches.

    .venv/bin/python bench/ack_path_bench.py [--rounds 7] [--requests 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "bench"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from _harness import private_redis, telegram_update, train_active_model  # noqa: E402

SECRET = "bench-secret"


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8000), "state": {}}


async def call(app, method: str, path: str, body: bytes = b"", headers: list | None = None) -> int:
    """One request through the app; its status."""
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    head = [(b"host", b"bench"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    await app(scope(method, path, head), receive, send)
    return sent[0]["status"]


async def run(args: argparse.Namespace, redis_url: str) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="caredesk-ack-bench-"))
    train_active_model(workdir / "models")
    os.environ.update({
        "CAREDESK_DATABASE_URL": f"sqlite:///{workdir}/bench.db", "CAREDESK_NLU__MODELS_DIR": str(workdir / "models"),
        "CAREDESK_TELEGRAM__TOKEN": "123456:BENCH", "CAREDESK_TELEGRAM__SECRET_TOKEN": SECRET,
        "CAREDESK_TELEGRAM__API_BASE": "http://127.0.0.1:9", "CAREDESK_LOG_LEVEL": "WARNING",
        "CAREDESK_REDIS_URL": redis_url, "CAREDESK_WORKER__MODE": "external"})
    from helpdesk.app import create_app
    from helpdesk.core.config import Settings

    app = create_app(Settings(), freeze_heap=True)
    webhook_headers = [(b"content-type", b"application/json"), (b"x-telegram-bot-api-secret-token", SECRET.encode())]
    update_id = 0

    async def webhook() -> int:
        nonlocal update_id
        update_id += 1
        body = json.dumps(telegram_update(update_id, 5000 + update_id % 50, "bảo hành bao lâu vậy shop")).encode()
        return await call(app, "POST", "/webhooks/telegram", body, webhook_headers)

    async def healthz() -> int:
        return await call(app, "GET", "/healthz")

    async def cpu_ms_each(request) -> float:
        started = time.process_time()
        for number in range(args.requests):
            if (status := await request()) != 200:
                raise SystemExit(f"the app answered {status}")
            if number % 10 == 0:
                await asyncio.sleep(0)  # let the job sender hand the jobs on, as between requests
        await asyncio.sleep(0.05)
        return (time.process_time() - started) / args.requests * 1000

    async with app.router.lifespan_context(app):
        for request in (webhook, healthz):  # warm-up
            await cpu_ms_each(request)
        figures: dict[str, list[float]] = {"webhook": [], "healthz": []}
        for _ in range(args.rounds):
            figures["webhook"].append(await cpu_ms_each(webhook))
            figures["healthz"].append(await cpu_ms_each(healthz))
    webhook_ms, healthz_ms = (statistics.median(figures[name]) for name in ("webhook", "healthz"))
    print(f"webhook_ack_cpu_ms {webhook_ms:.3f}")
    print(f"healthz_cpu_ms {healthz_ms:.3f}")
    print(f"webhook_over_healthz_cpu {webhook_ms / healthz_ms:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds of each kind, alternated")
    parser.add_argument("--requests", type=int, default=500, help="requests of a kind in a round")
    args = parser.parse_args()
    with private_redis() as redis_url:
        if redis_url is None:
            raise SystemExit("this bench needs redis-server (apt-get install redis-server)")
        asyncio.run(run(args, redis_url))


if __name__ == "__main__":
    main()

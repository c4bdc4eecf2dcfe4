"""Shared by the benchmarks: a trained model, a fake Telegram Bot API, and `caredesk serve` in a
subprocess on the embedded default (SQLite, no Redis)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

SECRET = "bench-secret"


def percentile(values: list[float], share: float) -> float:
    """The value below which ``share`` of the values fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def telegram_update(update_id: int, chat_id: int, text: str) -> dict:
    """A private-chat text update as Telegram posts it."""
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1764000000, "text": text,
        "from": {"id": chat_id, "is_bot": False, "first_name": "Bench"},
        "chat": {"id": chat_id, "type": "private", "first_name": "Bench"}}}


@dataclass
class Harness:
    """A running server, its fake platform and an HTTP session pointed at it."""

    fake: FakeTelegramAPI
    http: aiohttp.ClientSession
    workdir: Path

    def webhook(self, update: dict):
        """POST one Telegram update with the right secret (an aiohttp request context)."""
        return self.http.post("/webhooks/telegram", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})


@asynccontextmanager
async def running_caredesk(extra_env: dict[str, str] | None = None, demo: bool = False) -> AsyncIterator[Harness]:
    """Train a model, start the fake and the server, yield when the server is ready; clean up after."""
    from nlu import ModelStore, load_training_data

    workdir = Path(tempfile.mkdtemp(prefix="caredesk-bench-"))
    store = ModelStore(workdir / "models")
    store.activate(store.train_and_add(load_training_data([ROOT / "data" / "nlu"])))
    fake = FakeTelegramAPI(token="123456:BENCH").start()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "CAREDESK_DATABASE_URL": f"sqlite:///{workdir}/bench.db",
           "CAREDESK_NLU__MODELS_DIR": str(workdir / "models"), "CAREDESK_TELEGRAM__TOKEN": fake.token,
           "CAREDESK_TELEGRAM__SECRET_TOKEN": SECRET, "CAREDESK_TELEGRAM__API_BASE": fake.base_url,
           "CAREDESK_LOG_LEVEL": "WARNING", **(extra_env or {})}
    caredesk = str(Path(sys.executable).with_name("caredesk"))
    if demo:
        subprocess.run([caredesk, "demo"], env=env, cwd=workdir, check=True, capture_output=True)
    server = subprocess.Popen([caredesk, "serve", "--port", str(port)], env=env, cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # aiohttp rather than httpx on the client side: the load generator must cost less than the server.
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}",
                                         connector=aiohttp.TCPConnector(limit=200),
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            for _ in range(600):
                try:
                    async with http.get("/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("server did not become ready")
            yield Harness(fake, http, workdir)
    finally:
        server.terminate()
        server.wait(timeout=30)
        fake.stop()

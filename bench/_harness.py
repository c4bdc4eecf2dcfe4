"""Shared by the benchmarks: a trained model, a fake Telegram Bot API, `caredesk serve` in a
subprocess on the embedded default (SQLite, no Redis), and scratch PostgreSQL databases and Redis
servers of the bench's own (the test suite empties the shared ones whenever someone runs it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_api import FakeTelegramAPI  # noqa: E402

SECRET = "bench-secret"


def train_active_model(models_dir: Path) -> None:
    """Train a model on the shipped training data into a model store at ``models_dir``, made active
    (what a server given CAREDESK_NLU__MODELS_DIR=models_dir answers with)."""
    from nlu import ModelStore, load_training_data

    store = ModelStore(models_dir)
    store.activate(store.train_and_add(load_training_data([ROOT / "data" / "nlu"])))


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
    port: int = 0
    #: the `caredesk serve` process
    server_pid: int = 0

    def webhook(self, update: dict):
        """POST one Telegram update with the right secret (an aiohttp request context)."""
        return self.http.post("/webhooks/telegram", json=update,
                              headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})


@asynccontextmanager
async def running_caredesk(extra_env: dict[str, str] | None = None, demo: bool = False,
                           server_cpus: set[int] | None = None,
                           worker_cpus: set[int] | None = None) -> AsyncIterator[Harness]:
    """Train a model, start the fake and the server, yield when the server is ready; clean up after.
    ``server_cpus``: the processors the server (and so its worker child and every thread of both) may
    run on; the default is this process's own. ``worker_cpus``: also start a ``caredesk worker`` there
    (for a server in external mode: ``extra_env`` then names the Redis and the mode)."""
    workdir = Path(tempfile.mkdtemp(prefix="caredesk-bench-"))
    train_active_model(workdir / "models")
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
    # the server's log goes to a file: a pipe nobody reads would block the server once it filled
    log_file = open(workdir / "server.log", "wb")  # noqa: SIM115 - closed in the finally below
    server = subprocess.Popen([caredesk, "serve", "--port", str(port)], env=env, cwd=workdir,
                              stdout=subprocess.DEVNULL, stderr=log_file,
                              preexec_fn=(lambda: os.sched_setaffinity(0, server_cpus)) if server_cpus else None)
    worker = None
    if worker_cpus is not None:
        worker_log = open(workdir / "worker.log", "wb")  # noqa: SIM115 - closed in the finally below
        worker = subprocess.Popen([caredesk, "worker"], env=env, cwd=workdir, stdout=subprocess.DEVNULL,
                                  stderr=worker_log, preexec_fn=lambda: os.sched_setaffinity(0, worker_cpus))
    try:
        # aiohttp rather than httpx on the client side: the load generator must cost less than the server.
        async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}",
                                         connector=aiohttp.TCPConnector(limit=200),
                                         timeout=aiohttp.ClientTimeout(total=60)) as http:
            for _ in range(1800):  # up to 3 minutes: a shared machine can be very busy
                try:
                    async with http.get("/readyz") as ready:
                        if ready.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("server did not become ready")
            yield Harness(fake, http, workdir, port, server.pid)
    finally:
        for process in (server, worker):
            if process is not None:
                process.terminate()
                process.wait(timeout=30)
        log_file.close()
        if worker is not None:
            worker_log.close()
        fake.stop()


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def scratch_postgres(url: str, prefix: str = "caredesk_bench") -> Iterator[str]:
    """A fresh database on the server of ``url`` (its role needs CREATEDB), dropped afterwards.

    Benches never touch the database of the URL itself: the test suite drops and rebuilds that one's
    schema at any moment, and a bench must not wipe a colleague's test run (nor be wiped by one).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@contextmanager
def private_redis() -> Iterator[str | None]:
    """A redis-server of the bench's own on a free loopback port (no persistence), or None when
    redis-server is not installed; stopped afterwards."""
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    workdir = tempfile.mkdtemp(prefix="caredesk-bench-redis-")
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--dir", workdir],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, server, "the bench's redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def wait_for_port(port: int, process: subprocess.Popen, what: str, timeout_s: float = 10.0) -> None:
    """Wait until ``process`` accepts connections on the loopback ``port``; exit the bench if it dies
    or does not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise SystemExit(f"{what} did not start") from None
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the server's message worker)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return found

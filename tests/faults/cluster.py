"""Real servers for fault tests, each of the test's own so it can stop and start them at will: a
PostgreSQL cluster (initdb + pg_ctl from Debian's packages), a redis-server, and CareDesk processes
started with the commands an operator runs (`caredesk serve`, `caredesk worker`).

And a crowd of customers: many Telegram chats, each sending numbered questions one after the other
and delivering each again until it is acknowledged, as Telegram does."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SECRET = "fault-secret"
#: questions whose answers are always the same, whatever was asked before (FAQ answers)
QUESTIONS = ("bảo hành bao lâu vậy shop", "đổi trả trong bao lâu vậy", "phí ship bao nhiêu vậy shop",
             "shop có cửa hàng ở đâu", "thanh toán bằng cách nào")
#: how each answer begins (which question it answers)
ANSWERS = ("Tất cả sản phẩm gia dụng", "Bạn có thể trả hàng", "Shop miễn phí giao hàng", "Bếp Việt Demo có 2",
           "Shop nhận thanh toán")


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    """Until something accepts connections on the loopback port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run its tools as the postgres account."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _pg_bin() -> Path:
    versions = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()),
                      key=lambda p: int(p.parent.name))
    if not versions:
        raise RuntimeError("PostgreSQL's server programs are not installed (make test installs them)")
    return versions[-1]


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free port, to stop and start."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="caredesk-fault-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run(_as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "caredesk",
                                     "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]),
                       check=True, capture_output=True)
        self.url = f"postgresql+psycopg://caredesk@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        # fsync off only spares the disk: the server is stopped as a crashed process, never as a crashed
        # machine. Commits stay synchronous: an acknowledged commit must survive that crash, as in
        # production (with synchronous_commit off, a crash loses the last commits it acknowledged).
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                                     "-l", str(self.dir / "server.log"), "-w", "start"]),
                       check=True, capture_output=True)

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server (``immediate``: as a crash would, without a clean shutdown)."""
        subprocess.run(_as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "stop"]),
                       capture_output=True)

    def remove(self) -> None:
        """Stop and delete the cluster."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server of the test's own on a free port, without persistence, to stop and start."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="caredesk-fault-redis-")
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", self.dir],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)

    def kill(self) -> None:
        """Stop it at once (everything it held is gone, as with a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        """Stop it and delete its folder."""
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class CareDesk:
    """One `caredesk serve` or `caredesk worker` process, restartable, its log in a file."""

    def __init__(self, command: list[str], env: dict[str, str], workdir: Path, name: str, port: int | None = None):
        self.command, self.env, self.workdir, self.name, self.port = command, env, workdir, name, port
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the process (its log appended to ``<name>.log``)."""
        self.starts += 1
        log = open(self.workdir / f"{self.name}.log", "ab")  # noqa: SIM115 - the child holds it
        self.process = subprocess.Popen([str(Path(sys.executable).with_name("caredesk")), *self.command],
                                        env=self.env, cwd=self.workdir, stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until `/readyz` answers 200 (a server)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"{self.name} did not become ready:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the process and every process it started (a server's child worker included)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        """SIGTERM, as an orderly restart does."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the process's log."""
        path = self.workdir / f"{self.name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


def caredesk_env(workdir: Path, models_dir: Path, fake_base_url: str, fake_token: str, **settings: str) -> dict[str, str]:
    """The environment of a CareDesk process: this machine's, less any CAREDESK_ setting, plus these."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
    env.update({"CAREDESK_ENVIRONMENT": "test", "CAREDESK_NLU__MODELS_DIR": str(models_dir),
                "CAREDESK_TELEGRAM__TOKEN": fake_token, "CAREDESK_TELEGRAM__SECRET_TOKEN": SECRET,
                "CAREDESK_TELEGRAM__API_BASE": fake_base_url, "CAREDESK_LOG_LEVEL": "WARNING",
                "CAREDESK_WORKER__RETRY_MAX_S": "2", "CAREDESK_DATA_DIR": str(Path(__file__).parents[2] / "data")})
    env.update({f"CAREDESK_{key.upper()}": value for key, value in settings.items()})
    return env


@dataclass
class Crowd:
    """Customers writing at once: ``chats`` Telegram chats, ``per_chat`` messages each."""

    port: int
    chats: int
    per_chat: int
    pause_s: float = 0.3
    first_chat_id: int = 5_000_000
    refused: Counter = field(default_factory=Counter)

    def chat_ids(self) -> list[int]:
        """The chats' ids."""
        return [self.first_chat_id + n for n in range(self.chats)]

    async def write(self) -> None:
        """Every chat sends its messages in order, each delivered again until acknowledged (200)."""
        limits = httpx.Limits(max_connections=self.chats)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", limits=limits, timeout=10) as http:
            await asyncio.gather(*(self._chat(http, chat_id, n) for n, chat_id in enumerate(self.chat_ids())))

    async def _chat(self, http: httpx.AsyncClient, chat_id: int, offset: int) -> None:
        await asyncio.sleep(offset * self.pause_s / self.chats)  # spread the chats over the pause
        for number in range(self.per_chat):
            update_id = chat_id * 1000 + number
            update = {"update_id": update_id, "message": {
                "message_id": number + 1, "date": int(time.time()), "text": QUESTIONS[number % len(QUESTIONS)],
                "from": {"id": chat_id, "is_bot": False, "first_name": "Khách"},
                "chat": {"id": chat_id, "type": "private", "first_name": "Khách"}}}
            while True:
                try:
                    response = await http.post("/webhooks/telegram", json=update,
                                               headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
                    if response.status_code == 200:
                        break
                    self.refused[response.status_code] += 1
                except httpx.HTTPError as exc:
                    self.refused[type(exc).__name__] += 1
                await asyncio.sleep(0.25)  # the platform delivers it again a little later
            await asyncio.sleep(self.pause_s)


def verdict(sent: list[dict], chat_ids: list[int], per_chat: int) -> dict[str, int]:
    """Lost, duplicated and out-of-order answers per chat, from what the platform received: a chat's
    answers must answer its questions one each, in the order they were asked."""
    by_chat: dict[str, list[int]] = {str(chat_id): [] for chat_id in chat_ids}
    for params in sent:
        answers = by_chat.get(str(params.get("chat_id")))
        if answers is None:
            continue
        text = params.get("text", "")
        answers.append(next((n for n, start in enumerate(ANSWERS) if text.startswith(start)), -1))
    lost = duplicated = out_of_order = unexpected = 0
    for answers in by_chat.values():
        expected = [number % len(QUESTIONS) for number in range(per_chat)]
        unexpected += answers.count(-1)
        lost += max(0, per_chat - len(answers))
        duplicated += max(0, len(answers) - per_chat)
        if len(answers) == per_chat and answers != expected:
            out_of_order += 1
    return {"lost": lost, "duplicated": duplicated, "out_of_order_chats": out_of_order, "unexpected": unexpected}


def ledger_summary(database_url: str) -> str:
    """What the database says became of the messages (for a failing test's message)."""
    from sqlalchemy import text

    from helpdesk.channels.ledger import make_database_engine

    engine = make_database_engine(database_url)  # on SQLite, with the inbound ledger's file attached
    try:
        with engine.connect() as connection:
            lines = [
                "waiting events: " + str(connection.execute(text(
                    "SELECT count(*) FROM inbound_events e WHERE e.status = 'received' AND NOT EXISTS "
                    "(SELECT 1 FROM inbound_outcomes o WHERE o.event_id = e.id)")).scalar()),
                "outcomes: " + str(connection.execute(text(
                    "SELECT status, count(*) FROM inbound_outcomes GROUP BY status")).all()),
                "attempts: " + str(connection.execute(text(
                    "SELECT attempts, last_error FROM inbound_attempts LIMIT 5")).all()),
                "outbox: " + str(connection.execute(text(
                    "SELECT status, attempts, count(*) FROM outbox GROUP BY status, attempts")).all()),
            ]
    except Exception as exc:  # a diagnosis must not hide the failure it explains
        lines = [f"(could not read the database: {exc})"]
    finally:
        engine.dispose()
    return "\n".join(lines)


def missing_by_chat(sent: list[dict], chat_ids: list[int], per_chat: int) -> dict[int, int]:
    """Chats that got fewer answers than questions, and how many fewer."""
    counts = Counter(str(params.get("chat_id")) for params in sent)
    return {chat_id: per_chat - counts[str(chat_id)] for chat_id in chat_ids if counts[str(chat_id)] < per_chat}


async def first_answer(fake, port: int, chat_id: int = 4_999_999, timeout: float = 90.0) -> None:
    """Send one question and wait for its answer: the whole pipeline runs (a worker too)."""
    update = {"update_id": 1, "message": {"message_id": 1, "date": int(time.time()), "text": QUESTIONS[0],
                                          "from": {"id": chat_id, "is_bot": False, "first_name": "Khách"},
                                          "chat": {"id": chat_id, "type": "private", "first_name": "Khách"}}}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
        response = await http.post("/webhooks/telegram", json=update,
                                   headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 200, response.text
    deadline = time.monotonic() + timeout
    while not fake.sent_messages(chat_id):
        if time.monotonic() > deadline:
            raise TimeoutError("the first question was not answered")
        await asyncio.sleep(0.1)


def duplicates_timeline(fake, chat_ids: list[int], per_chat: int, since: float) -> list[tuple[int, list[float]]]:
    """For each chat answered more often than asked: when (seconds after ``since``) its answers that
    repeat the one before went out."""
    found = []
    for chat_id in chat_ids:
        calls = [call for call in fake.calls_to("sendMessage") if str(call.params.get("chat_id")) == str(chat_id)]
        if len(calls) <= per_chat:
            continue
        texts = [call.params.get("text", "") for call in calls]
        found.append((chat_id, [(round(calls[n - 1].at - since, 3), round(calls[n].at - since, 3))
                                for n in range(1, len(calls)) if texts[n] == texts[n - 1]]))
    return found


def waiting_work(database_url: str) -> bool:
    """Whether an event waits to be processed or a message waits in the outbox."""
    from sqlalchemy import text

    from helpdesk.channels.ledger import make_database_engine

    engine = make_database_engine(database_url)
    try:
        with engine.connect() as connection:
            return bool(connection.execute(text(
                "SELECT EXISTS (SELECT 1 FROM inbound_events e WHERE e.status = 'received' AND NOT EXISTS "
                "(SELECT 1 FROM inbound_outcomes o WHERE o.event_id = e.id)) "
                "OR EXISTS (SELECT 1 FROM outbox WHERE status = 'pending')")).scalar())
    except Exception:  # not reachable yet: keep waiting
        return True
    finally:
        engine.dispose()

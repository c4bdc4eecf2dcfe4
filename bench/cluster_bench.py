"""End-to-end throughput of the production stack with 1, 2 and 3 workers, against the embedded default
in the same run; the CPU a message costs on each; recovery after a worker is SIGKILLed; and how long
a backlog of queued messages takes to clear.

Every figure is end to end: webhooks posted (acknowledged by the app), answered by the bot, and the
answer received by the loopback fake Telegram API. The production stack runs with exactly the
commands and settings of docker-compose.yml (tests/faults/stack.py): `caredesk migrate`, one
`caredesk serve` in external mode, N `caredesk worker`; PostgreSQL is a scratch database on the test
server, Redis a private redis-server. CPU per message counts the CareDesk processes (and Redis on the
distributed path), not PostgreSQL, whose backends serve other clients too.

On a 2-core machine three workers cannot run faster than two cores allow: read the scaling figures as
what the cores let through, and the CPU per message as what more cores would buy.

Prints one figure a line: `name value`.

    .venv/bin/python bench/cluster_bench.py [--messages 2000] [--chats 100] [--backlog 10000]
                                               [--only catch-up|recovery|cpu-ratio [--repeat 5]]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import tempfile
import time
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from _harness import (
    ROOT,
    SECRET,
    children_of,
    cpu_seconds,
    private_redis,
    running_caredesk,
    scratch_postgres,
    telegram_update,
    train_active_model,
)

from tests.fakes.telegram_api import FakeTelegramAPI
from tests.faults.cluster import CareDesk, free_port
from tests.faults.stack import process_argv, process_environment

QUESTION = "bảo hành bao lâu vậy shop"


async def post_all(http: aiohttp.ClientSession, chats: int, per_chat: int, first_update: int,
                   first_chat: int = 7_000_000, pause_s: float = 0.0) -> dict[int, list[float]]:
    """Every chat posts its messages one after the other (each once acknowledged), all chats at once;
    when each was acknowledged (perf_counter), by chat."""
    acknowledged: dict[int, list[float]] = {first_chat + n: [] for n in range(chats)}

    async def chat(chat_id: int) -> None:
        for number in range(per_chat):
            if number and pause_s:
                await asyncio.sleep(pause_s)
            update = telegram_update(first_update + chat_id * 1000 + number, chat_id, QUESTION)
            while True:
                async with http.post("/webhooks/telegram", json=update,
                                     headers={"X-Telegram-Bot-Api-Secret-Token": SECRET}) as response:
                    await response.read()
                    if response.status == 200:
                        acknowledged[chat_id].append(time.perf_counter())
                        break
                await asyncio.sleep(0.2)

    await asyncio.gather(*(chat(first_chat + n) for n in range(chats)))
    return acknowledged


#: no new answer for this long while some are still due counts as a stall (see answered's on_stall)
STALL_S = 30.0


async def answered(fake: FakeTelegramAPI, count: int, timeout: float = 900.0, on_stall=None) -> float:
    """Wait until the fake received ``count`` answers; the moment it did (perf_counter). ``on_stall``
    (a coroutine function) is awaited each time no answer arrived for STALL_S seconds."""
    deadline = time.perf_counter() + timeout
    seen, progress_at = 0, time.perf_counter()
    while (now_seen := len(fake.calls_to("sendMessage"))) < count:
        now = time.perf_counter()
        if now > deadline:
            raise SystemExit(f"only {now_seen} of {count} answers arrived")
        if now_seen != seen:
            seen, progress_at = now_seen, now
        elif on_stall is not None and now - progress_at > STALL_S:
            await on_stall(count - now_seen)
            progress_at = time.perf_counter()
        await asyncio.sleep(0.05)
    return time.perf_counter()


async def report_stall(stack: "Stack", missing: int) -> None:
    """What a stalled stack is doing: each worker's asyncio tasks (SIGUSR1 makes `caredesk worker`
    log them) and the stream's pending entries, on stderr."""
    import sys

    import redis.asyncio as aioredis

    from helpdesk.jobs.streams import GROUP, STREAM

    print(f"STALL: {missing} answers missing, nothing answered for {STALL_S:.0f} s", file=sys.stderr)
    client = aioredis.from_url(stack.redis_url, decode_responses=True)
    try:
        print(f"pending: {await client.xpending(STREAM, GROUP)}", file=sys.stderr)
        print(f"group: {await client.xinfo_groups(STREAM)}", file=sys.stderr)
        print(f"locks: {len(await client.keys('caredesk:lock:*'))}", file=sys.stderr)
    finally:
        await client.aclose()
    for worker in stack.workers:
        if worker.process and worker.process.poll() is None:
            os.kill(worker.process.pid, signal.SIGUSR1)
    await asyncio.sleep(3)
    for worker in stack.workers:
        print(f"--- {worker.name} ---\n{worker.log_tail(400)}", file=sys.stderr)
    STALLS.append(missing)


STALLS: list[int] = []


def cpu_of(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


async def embedded(args: argparse.Namespace, database_url: str | None = None,
                   label: str = "embedded") -> tuple[float, float]:
    """Messages per second and CPU ms per message on the embedded default (SQLite, a child worker),
    or with ``database_url`` the same single server on that database (no Redis)."""
    extra = {"CAREDESK_DATABASE_URL": database_url} if database_url else None
    async with running_caredesk(extra) as harness:
        roles = {"app": [harness.server_pid], "workers": children_of(harness.server_pid)}
        before = len(harness.fake.calls_to("sendMessage"))
        profilers = start_profilers(roles, label)
        cpu_before = {role: cpu_of(pids) for role, pids in roles.items()}
        started = time.perf_counter()
        await post_all(harness.http, args.chats, args.messages // args.chats, first_update=1)
        finished = await answered(harness.fake, before + args.messages)
        spent = {role: cpu_of(pids) - cpu_before[role] for role, pids in roles.items()}
        stop_profilers(profilers)
    for role, seconds in spent.items():
        print(f"{label}_cpu_ms_per_msg_{role} {seconds * 1000 / args.messages:.2f}")
    return args.messages / (finished - started), sum(spent.values()) * 1000 / args.messages


class Stack:
    """The production stack's processes on a scratch database and a private Redis."""

    def __init__(self, database_url: str, redis_url: str, redis_pid: int | None, fake: FakeTelegramAPI,
                 workdir: Path, models_dir: Path):
        self.workdir = workdir
        self.redis_url = redis_url
        self.redis_pid = redis_pid
        self.port = free_port()
        host = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}

        def env(service: str) -> dict[str, str]:
            return {**host, **process_environment(
                service, database_url=database_url, redis_url=redis_url,
                CAREDESK_TELEGRAM__TOKEN=fake.token, CAREDESK_TELEGRAM__SECRET_TOKEN=SECRET,
                CAREDESK_TELEGRAM__API_BASE=fake.base_url, CAREDESK_NLU__MODELS_DIR=str(models_dir),
                CAREDESK_DATA_DIR=str(ROOT / "data"), CAREDESK_LOG_LEVEL="WARNING")}

        self.env = env
        self.app = CareDesk(process_argv("app", self.port), env("app"), workdir, "app", self.port)
        self.workers: list[CareDesk] = []

    def migrate(self) -> None:
        migrate = CareDesk(process_argv("migrate"), self.env("migrate"), self.workdir, "migrate")
        migrate.start()
        if migrate.process.wait(600) != 0:
            raise SystemExit(f"caredesk migrate failed:\n{migrate.log_tail()}")

    def start_worker(self) -> CareDesk:
        port = free_port()  # compose's 8001 is per container; here each worker needs a port of its own
        worker = CareDesk(process_argv("worker"), {**self.env("worker"), "CAREDESK_WORKER__HTTP_PORT": str(port)},
                          self.workdir, f"worker{len(self.workers) + 1}", port)
        worker.start()
        self.workers.append(worker)
        return worker

    def pids(self) -> list[int]:
        running = [p.process.pid for p in (self.app, *self.workers) if p.process and p.process.poll() is None]
        return running + ([self.redis_pid] if self.redis_pid else [])

    def roles(self) -> dict[str, list[int]]:
        """The processes of pids(), by part: app, workers, redis."""
        every = self.pids()
        app = [pid for pid in every if pid == self.app.process.pid]
        redis = [pid for pid in every if pid == self.redis_pid]
        return {"app": app, "workers": [pid for pid in every if pid not in app + redis], "redis": redis}

    def stop(self) -> None:
        for process in (self.app, *self.workers):
            process.kill()


@asynccontextmanager
async def production_stack(postgres_url: str, models_dir: Path):
    """A fresh database, a private Redis and a fake platform; the stack migrated, its app ready."""
    fake = FakeTelegramAPI(token="123456:CLUSTERBENCH").start()
    workdir = Path(tempfile.mkdtemp(prefix="caredesk-cluster-bench-"))
    with scratch_postgres(postgres_url) as database_url, private_redis() as redis_url:
        if redis_url is None:
            raise SystemExit("redis-server is not installed (make test installs it)")
        redis_pid = next((int(entry.name) for entry in Path("/proc").glob("[0-9]*")
                          if _cmdline(entry).split(" ")[0].endswith("redis-server") and f":{redis_url.split(':')[2].split('/')[0]}"
                          in _cmdline(entry)), None)
        stack = Stack(database_url, redis_url, redis_pid, fake, workdir, models_dir)
        try:
            await asyncio.to_thread(stack.migrate)
            stack.app.start()
            await asyncio.to_thread(stack.app.wait_ready, 120)
            async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{stack.port}",
                                             connector=aiohttp.TCPConnector(limit=200),
                                             timeout=aiohttp.ClientTimeout(total=60)) as http:
                yield stack, fake, http
        finally:
            stack.stop()
            fake.stop()


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


async def redis_commands(url: str) -> dict[str, int]:
    """Calls of each Redis command so far (INFO commandstats)."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return {name.removeprefix("cmdstat_"): int(entry["calls"]) for name, entry in stats.items()}


def start_profilers(roles: dict[str, list[int]], label: str = "distributed") -> list[subprocess.Popen]:
    """With CLUSTER_BENCH_PROFILE=<dir> and py-spy on the PATH (or CLUSTER_BENCH_PYSPY), sample the app
    and the workers while holding the GIL (their Python CPU time) during the measured run into <dir>/<label>-<role>-<pid>.txt (py-spy's raw, collapsed stacks)."""
    where = os.environ.get("CLUSTER_BENCH_PROFILE")
    if not where:
        return []
    pyspy = os.environ.get("CLUSTER_BENCH_PYSPY", "py-spy")
    Path(where).mkdir(parents=True, exist_ok=True)
    return [subprocess.Popen([pyspy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--nonblocking", "--gil",
                              "-o", str(Path(where) / f"{label}-{role}-{pid}.txt")],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for role in ("app", "workers") for pid in roles.get(role, [])]


def stop_profilers(profilers: list[subprocess.Popen]) -> None:
    for profiler in profilers:
        profiler.send_signal(signal.SIGINT)
    for profiler in profilers:
        profiler.wait(60)


async def distributed(args: argparse.Namespace, models_dir: Path, workers: int) -> tuple[float, float]:
    """Messages per second and CPU ms per message with ``workers`` worker replicas."""
    async with production_stack(args.postgres_url, models_dir) as (stack, fake, http):
        for _ in range(workers):
            stack.start_worker()
        # warm: every worker has loaded its model and answers
        await post_all(http, workers * 2, 1, first_update=1, first_chat=6_000_000)
        await answered(fake, workers * 2)
        roles = stack.roles()
        commands_before = await redis_commands(stack.redis_url)
        profilers = start_profilers(roles)
        cpu_before = {role: cpu_of(pids) for role, pids in roles.items()}
        started = time.perf_counter()
        await post_all(http, args.chats, args.messages // args.chats, first_update=10)
        finished = await answered(fake, workers * 2 + args.messages,
                                  on_stall=lambda missing: report_stall(stack, missing))
        spent = {role: cpu_of(pids) - cpu_before[role] for role, pids in roles.items()}
        stop_profilers(profilers)
        commands = await redis_commands(stack.redis_url)
    calls = {name: count - commands_before.get(name, 0) for name, count in commands.items()}
    print(f"distributed_{workers}w_redis_commands_per_msg {sum(calls.values()) / args.messages:.1f}")
    if os.environ.get("CLUSTER_BENCH_VERBOSE"):
        for name, count in sorted(calls.items(), key=lambda item: -item[1])[:12]:
            print(f"distributed_{workers}w_redis_{name}_per_msg {count / args.messages:.2f}")
    for role, seconds in spent.items():
        print(f"distributed_{workers}w_cpu_ms_per_msg_{role} {seconds * 1000 / args.messages:.2f}")
    return args.messages / (finished - started), sum(spent.values()) * 1000 / args.messages


async def recovery(args: argparse.Namespace, models_dir: Path) -> float:
    """Two workers under a steady flow; one is SIGKILLed: seconds from the kill until every message
    acknowledged before it is answered (the jobs the killed worker held are taken over by the other)."""
    async with production_stack(args.postgres_url, models_dir) as (stack, fake, http):
        first, _second = stack.start_worker(), stack.start_worker()
        await post_all(http, 4, 1, first_update=1, first_chat=6_000_000)
        await answered(fake, 4)
        flow = asyncio.create_task(post_all(http, 40, 30, first_update=10, pause_s=0.2))
        await asyncio.sleep(3)
        os.killpg(first.process.pid, signal.SIGKILL)
        killed = time.perf_counter()
        acknowledged = await flow
        await answered(fake, 4 + 40 * 30)
        last = killed
        for chat_id, acks in acknowledged.items():
            answers = [call.at for call in fake.calls_to("sendMessage")
                       if str(call.params.get("chat_id")) == str(chat_id)]
            # a chat's answers come in the order of its messages
            last = max([last, *(answer for ack, answer in zip(acks, answers, strict=False) if ack <= killed)])
        return last - killed


async def catch_up(args: argparse.Namespace, models_dir: Path) -> tuple[float, float]:
    """A backlog: ``args.backlog`` messages acknowledged while no worker runs; seconds to queue them and
    seconds for three workers to answer them all."""
    async with production_stack(args.postgres_url, models_dir) as (stack, fake, http):
        started = time.perf_counter()
        await post_all(http, 100, args.backlog // 100, first_update=10)
        queued = time.perf_counter() - started
        started = time.perf_counter()
        for _ in range(3):
            stack.start_worker()
        finished = await answered(fake, args.backlog, timeout=1800,
                                  on_stall=lambda missing: report_stall(stack, missing))
    return queued, finished - started


async def cpu_ratio(args: argparse.Namespace, models_dir: Path) -> None:
    """The CPU per message of one app and one worker over the embedded default's, measured
    ``args.repeat`` times in alternation (embedded, then distributed), and the median of the ratios:
    on a shared machine one pair can be off by 15% either way."""
    import statistics

    ratios = []
    for turn in range(args.repeat):
        _rate, base = await embedded(args)
        _rate, cost = await distributed(args, models_dir, 1)
        ratios.append(cost / base)
        print(f"cpu_ratio_{turn + 1} {ratios[-1]:.2f}")
    print(f"distributed_over_embedded_cpu_per_msg_median {statistics.median(ratios):.2f}")


async def run(args: argparse.Namespace) -> None:
    models_dir = Path(tempfile.mkdtemp(prefix="caredesk-cluster-bench-models-"))
    train_active_model(models_dir)
    if args.only == "recovery":
        print(f"recovery_after_worker_kill_s {await recovery(args, models_dir):.1f}")
        return
    if args.only == "catch-up":
        queued, cleared = await catch_up(args, models_dir)
        print(f"backlog_{args.backlog}_queue_s {queued:.1f}")
        print(f"backlog_{args.backlog}_catch_up_s {cleared:.1f}")
        print(f"backlog_{args.backlog}_stalls {len(STALLS)}")
        return
    if args.only == "cpu-ratio":
        await cpu_ratio(args, models_dir)
        return
    rate, cpu = await embedded(args)
    print(f"embedded_msgs_per_s {rate:.1f}")
    print(f"embedded_cpu_ms_per_msg {cpu:.2f}")
    if args.postgres_url:
        # the same single server on PostgreSQL: splits the distributed path's extra cost into the
        # database's share and the share of Redis and of the app/worker split
        with scratch_postgres(args.postgres_url) as database_url:
            pg_rate, pg_cpu = await embedded(args, database_url, label="embedded_postgres")
        print(f"embedded_postgres_msgs_per_s {pg_rate:.1f}")
        print(f"embedded_postgres_cpu_ms_per_msg {pg_cpu:.2f}")
    distributed_cpu = {}
    for workers in args.workers:
        d_rate, d_cpu = await distributed(args, models_dir, workers)
        distributed_cpu[workers] = d_cpu
        print(f"distributed_{workers}w_msgs_per_s {d_rate:.1f}")
        print(f"distributed_{workers}w_cpu_ms_per_msg {d_cpu:.2f}")
        print(f"distributed_{workers}w_over_embedded_rate {d_rate / rate:.2f}")
    print(f"distributed_over_embedded_cpu_per_msg {distributed_cpu[min(distributed_cpu)] / cpu:.2f}")
    if not args.skip_faults:
        print(f"recovery_after_worker_kill_s {await recovery(args, models_dir):.1f}")
        queued, cleared = await catch_up(args, models_dir)
        print(f"backlog_{args.backlog}_queue_s {queued:.1f}")
        print(f"backlog_{args.backlog}_catch_up_s {cleared:.1f}")
        print(f"backlog_{args.backlog}_catch_up_msgs_per_s {args.backlog / cleared:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000, help="messages in each throughput run")
    parser.add_argument("--chats", type=int, default=100, help="chats they are spread over")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3], help="worker replica counts")
    parser.add_argument("--backlog", type=int, default=10_000, help="messages queued before workers start")
    parser.add_argument("--skip-faults", action="store_true", help="throughput only")
    parser.add_argument("--only", choices=("catch-up", "recovery", "cpu-ratio"), help="run one part only")
    parser.add_argument("--repeat", type=int, default=5, help="alternating pairs of runs for --only cpu-ratio")
    parser.add_argument("--postgres-url", default=os.environ.get("CAREDESK_TEST_POSTGRES_URL", ""),
                        help="a PostgreSQL server whose role may create databases (default: the test server's)")
    args = parser.parse_args()
    if not args.postgres_url:
        parser.error("give --postgres-url or source var/test-services.env")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()

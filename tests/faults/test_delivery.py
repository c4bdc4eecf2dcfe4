"""No acknowledged message is lost, answered twice or answered out of order while the machinery
fails under it: worker and server killed (SIGKILL) and restarted, Redis killed and started again,
PostgreSQL stopped as by a crash and started again — on the production shape (PostgreSQL, Redis,
`caredesk serve` in external mode and a `caredesk worker`) and on the embedded default (SQLite, the
server's child worker).

Thousands of messages over many chats, each chat asking questions whose answers tell which question
they answer; the platform's fake records every answer sent."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults.cluster import (
    CareDesk,
    Crowd,
    PrivatePostgres,
    PrivateRedis,
    caredesk_env,
    duplicates_timeline,
    first_answer,
    free_port,
    ledger_summary,
    waiting_work,
    missing_by_chat,
    verdict,
)
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = [pytest.mark.slow, pytest.mark.alone, pytest.mark.timeout(600)]

#: how long Redis and PostgreSQL stay away (a longer run: CAREDESK_FAULT_OUTAGE_S=20)
OUTAGE_S = float(os.environ.get("CAREDESK_FAULT_OUTAGE_S", "6"))


#: (what, when) of the faults of the running test, for its failure message
TIMELINE: list[tuple[str, float]] = []


#: a send this close before the SIGKILL of the process making it may be answered by the platform and
#: not yet recorded: that one message goes out again (no platform takes an idempotency key for a bot's
#: message). Any other repeat is a defect.
IN_FLIGHT_S = 0.5


async def later(seconds: float, action, *args) -> None:
    """Run a blocking fault action after ``seconds``, off the loop (the crowd keeps writing)."""
    await asyncio.sleep(seconds)
    TIMELINE.append((getattr(action, "__name__", str(action)), time.perf_counter(), False))
    await asyncio.to_thread(action, *args)


def sender_killed(name: str) -> None:
    """Note the moment a process that sends the answers was SIGKILLed: called right after the signal,
    not when the action started (finding the process can take a while on a loaded machine, and a
    send in flight at the real moment would look unexplained)."""
    TIMELINE.append((name, time.perf_counter(), True))


def unexplained_repeats(fake, crowd, since: float) -> list:
    """Repeated answers whose first copy was not in flight when a sending process was killed."""
    kills = [at - since for _name, at, kills_sender in TIMELINE if kills_sender]
    return [(chat_id, pair) for chat_id, pairs in duplicates_timeline(fake, crowd.chat_ids(), crowd.per_chat, since)
            for pair in pairs if not any(kill - IN_FLIGHT_S <= pair[0] <= kill + 0.05 for kill in kills)]


async def everything_settled(database_url: str, timeout: float = 90.0) -> None:
    """Until no event waits and nothing waits in the outbox (a send cut short by a kill goes out again
    once its lease ends), so every repeat there will be has happened."""
    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(waiting_work, database_url) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)


def faults_and_duplicates(fake, crowd, since: float) -> str:
    timeline = [(name, round(at - since, 2)) for name, at, _kills in TIMELINE]
    return (f"faults {timeline}\nrepeated answers "
            f"{duplicates_timeline(fake, crowd.chat_ids(), crowd.per_chat, since)}\n")


async def all_answered(fake: FakeTelegramAPI, expected: int, timeout: float) -> float:
    """Wait until ``expected`` answers arrived and no more come for a moment; how long it took."""
    started = time.monotonic()
    deadline = started + timeout
    while len(fake.sent_messages()) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
    await asyncio.sleep(2.0)  # time for a duplicate to show up
    return time.monotonic() - started


async def assert_every_message_answered_once_in_order(fake: FakeTelegramAPI, crowd: Crowd, started: float,
                                                     database: str, *processes: CareDesk,
                                                     faults_reach_crowd: bool = True) -> None:
    """Every message the crowd got acknowledged is answered, once, in its chat's order (a repeat only
    of a send in flight at a kill); and the faults did reach the crowd (unless a load balancer is
    there to hide them: ``faults_reach_crowd``)."""
    took = await all_answered(fake, crowd.chats * crowd.per_chat, timeout=120)
    await everything_settled(database)
    result = verdict(fake.sent_messages(), crowd.chat_ids(), crowd.per_chat)
    repeats = unexplained_repeats(fake, crowd, started)
    print(f"fault suite: {result}, refused deliveries {dict(crowd.refused)}")
    assert (result["lost"], result["out_of_order_chats"], result["unexpected"], repeats) == (0, 0, 0, []), (
        f"{result}; refused deliveries {dict(crowd.refused)}; settled {took:.1f}s after the crowd\n"
        + faults_and_duplicates(fake, crowd, started)
        + f"missing {missing_by_chat(fake.sent_messages(), crowd.chat_ids(), crowd.per_chat)}\n"
        + ledger_summary(database) + "\n" + explain(*processes))
    if faults_reach_crowd:
        assert crowd.refused, "no fault reached a delivery: the test did not test anything"


def explain(*processes: CareDesk) -> str:
    """The processes' logs, each running `caredesk worker` first asked (SIGUSR1) to log where its
    tasks wait: a chat whose messages stay unanswered shows where its job hangs."""
    asked = False
    for process in processes:
        if process.command[:1] == ["worker"] and process.process and process.process.poll() is None:
            os.kill(process.process.pid, signal.SIGUSR1)
            asked = True
    if asked:
        time.sleep(2)
    return "\n".join(f"--- {p.name} ---\n{_worker_story(p) if asked and p.command[:1] == ['worker'] else p.log_tail(40)}"
                     for p in processes)


def _worker_story(process: CareDesk) -> str:
    """What a worker's log says about hung work: every job reported stuck (with where it waited) and
    the whole task dump SIGUSR1 asked for, not only the log's tail (a dump of hundreds of tasks is
    longer than any tail, and the one holding a chat is anywhere in it)."""
    lines = process.log_tail(1_000_000).splitlines()
    stuck = [index for index, line in enumerate(lines) if "has been running for" in line]
    told = [line for index in stuck[:20] for line in lines[index:index + 12]]
    dump_at = max((index for index, line in enumerate(lines) if line.endswith(" asyncio tasks")), default=len(lines) - 150)
    return "\n".join(["stuck jobs:", *told, "task dump:", *lines[dump_at:dump_at + 4000]])


@pytest.fixture
def fake_platform():
    with FakeTelegramAPI(token="123456:FAULTS") as fake:
        yield fake


async def test_production_shape_loses_nothing_through_kills_and_outages(
        tmp_path: Path, trained_models_dir: Path, fake_platform: FakeTelegramAPI):
    postgres, redis = PrivatePostgres(), PrivateRedis()
    postgres.start()
    redis.start()
    port = free_port()
    env = caredesk_env(tmp_path, trained_models_dir, fake_platform.base_url, fake_platform.token,
                       database_url=postgres.url, redis_url=redis.url, worker__mode="external")
    server = CareDesk(["serve", "--port", str(port)], env, tmp_path, "server", port)
    worker = CareDesk(["worker"], {**env, "CAREDESK_WORKER__MODE": "auto"}, tmp_path, "worker")
    # the crowd writes through the whole schedule of faults
    crowd = Crowd(port, chats=40, per_chat=max(50, int((13 + 2 * OUTAGE_S) / 0.3)), pause_s=0.3)
    database = postgres.url
    try:
        server.start()
        server.wait_ready()
        worker.start()
        await first_answer(fake_platform, port)  # the faults begin with everything running

        def restart(process: CareDesk) -> None:
            process.kill()
            if process is worker:
                sender_killed("worker killed")
            time.sleep(1.0)
            process.start()

        def outage(stop, start, seconds: float) -> None:
            stop()
            time.sleep(seconds)
            start()

        TIMELINE.clear()
        started = time.perf_counter()
        await asyncio.gather(
            crowd.write(),
            later(2, restart, worker),
            later(5, outage, redis.kill, redis.start, OUTAGE_S),
            later(7 + OUTAGE_S, outage, postgres.stop, postgres.start, OUTAGE_S),
            later(9 + 2 * OUTAGE_S, restart, server),
        )
        await assert_every_message_answered_once_in_order(fake_platform, crowd, started, database, server, worker)
    finally:
        server.kill()
        worker.kill()
        redis.remove()
        postgres.remove()


async def test_embedded_default_loses_nothing_through_kills_and_restarts(
        tmp_path: Path, trained_models_dir: Path, fake_platform: FakeTelegramAPI):
    port = free_port()
    env = caredesk_env(tmp_path, trained_models_dir, fake_platform.base_url, fake_platform.token,
                       database_url=f"sqlite:///{tmp_path}/caredesk.db")
    server = CareDesk(["serve", "--port", str(port)], env, tmp_path, "server", port)
    crowd = Crowd(port, chats=40, per_chat=40, pause_s=0.25)
    database = f"sqlite:///{tmp_path}/caredesk.db"
    try:
        server.start()
        server.wait_ready()
        await first_answer(fake_platform, port)

        def kill_child() -> None:
            # the message worker, a child of the server: the server starts another
            for entry in Path("/proc").glob("[0-9]*"):
                try:
                    if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == server.process.pid:
                        os.kill(int(entry.name), signal.SIGKILL)
                        sender_killed("worker child killed")
                except (OSError, ValueError, IndexError):
                    continue

        def crash_and_restart() -> None:
            server.kill()
            sender_killed("server and its child killed")
            time.sleep(0.5)
            server.start()

        def orderly_restart() -> None:
            server.stop()
            server.start()

        TIMELINE.clear()
        started = time.perf_counter()
        await asyncio.gather(
            crowd.write(),
            later(2, kill_child),
            later(7, crash_and_restart),
            later(14, orderly_restart),
        )
        await assert_every_message_answered_once_in_order(fake_platform, crowd, started, database, server)
    finally:
        server.kill()

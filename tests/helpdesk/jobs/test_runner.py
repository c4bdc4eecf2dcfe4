"""The job runner: one key's jobs in order, retries while infrastructure is away, named jobs."""

from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace

from redis.exceptions import ConnectionError as RedisConnectionError

from helpdesk.jobs.remote import _run_job
from helpdesk.jobs.runner import JobRunner, TryAgainLater


def quick_retries() -> SimpleNamespace:
    return SimpleNamespace(retry_base_s=0.01, retry_max_s=0.02)


async def test_one_keys_jobs_run_in_order_and_other_keys_meanwhile():
    runner = JobRunner(quick_retries())
    ran: list[str] = []
    first_started, release = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        first_started.set()
        await release.wait()
        ran.append("chat-1 first")

    async def record(name: str) -> None:
        ran.append(name)

    runner.submit("chat-1", slow)
    runner.submit("chat-1", lambda: record("chat-1 second"))
    runner.submit("chat-2", lambda: record("chat-2"))
    await first_started.wait()
    await asyncio.sleep(0.01)
    assert ran == ["chat-2"]  # the other chat did not wait; the first chat's second job did
    release.set()
    await runner.wait_idle(2)
    assert ran == ["chat-2", "chat-1 first", "chat-1 second"]


async def test_a_job_is_tried_again_while_infrastructure_is_away_or_it_asks_to():
    runner = JobRunner(quick_retries())
    failures = [RedisConnectionError("Connection refused"), TryAgainLater("tries left")]
    tries: list[int] = []

    async def flaky() -> None:
        tries.append(1)
        if failures:
            raise failures.pop(0)

    runner.submit("chat", flaky)
    await runner.wait_idle(2)
    assert len(tries) == 3


async def test_a_job_failing_for_a_reason_of_its_own_is_dropped(caplog):
    runner = JobRunner(quick_retries())
    tries: list[int] = []

    async def broken() -> None:
        tries.append(1)
        raise ValueError("a bug")

    with caplog.at_level(logging.ERROR, logger="helpdesk.jobs.runner"):
        runner.submit("chat", broken)
        await runner.wait_idle(2)
    assert tries == [1]
    assert "background job failed" in caplog.text


async def test_named_jobs_reach_their_handler_from_this_process_and_from_the_transport(caplog):
    runner = JobRunner(quick_retries())
    received: list[dict] = []
    runner.register("greet", received.append)

    runner.dispatch("greet", name="Lan")
    await asyncio.to_thread(runner.dispatch, "greet", name="from a route's thread")
    _run_job(runner, {"data": json.dumps({"kind": "greet", "name": "from the broker"})})
    await asyncio.sleep(0)
    assert [args["name"] for args in received] == ["Lan", "from a route's thread", "from the broker"]

    with caplog.at_level(logging.WARNING, logger="helpdesk.jobs"):
        runner.dispatch("nobody handles this")
        _run_job(runner, {"data": "not json"})
        _run_job(runner, {"data": json.dumps({"name": "no kind"})})
    assert "nobody handles" in caplog.text and caplog.text.count("malformed") == 2
    assert len(received) == 3


async def test_a_job_that_hangs_is_logged_with_where_it_waits_and_a_quick_one_is_not(caplog, monkeypatch):
    from helpdesk.jobs import runner as runner_module

    monkeypatch.setattr(runner_module, "STUCK_JOB_S", 0.2)
    runner = JobRunner(quick_retries())
    never = asyncio.Event()

    async def waits_for_ever_on_a_lost_reply() -> None:
        await never.wait()

    async def quick() -> None:
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING, logger="helpdesk.jobs.runner"):
        runner.submit("chat-1", quick)
        runner.submit("chat-2", waits_for_ever_on_a_lost_reply)
        await asyncio.sleep(0.5)
    stuck = [record.getMessage() for record in caplog.records if "has been running" in record.getMessage()]
    assert len(stuck) == 1, stuck
    assert "chat-2" in stuck[0] and "waits_for_ever_on_a_lost_reply" in stuck[0]
    never.set()
    await runner.wait_idle(2)

"""The channels' periodic work on the scheduler: the stray-event sweep's timing and its catch-up, and
its floor never hiding an event from its own job."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from helpdesk.channels.ledger import make_database_engine
from helpdesk.channels.models import EventStatus, InboundEvent, InboundOutcome
from helpdesk.channels.tasks import STRAY_EVENT_AGE_S, ChannelJobs, schedule_stray_sweep
from helpdesk.core.config import WorkerSettings
from helpdesk.jobs.runner import JobRunner
from helpdesk.jobs.scheduler import Scheduler
from tests.helpdesk.conversations.test_turn_writes import SENDER, _flow, decision, record_event


class SweepsRecorded(ChannelJobs):
    """ChannelJobs whose sweeps are recorded instead of reading the database; the first ``fail`` fail."""

    def __init__(self, fail: int = 0):
        self.catch_up = False
        self.fail = fail
        self.sweeps: list[float] = []

    async def sweep_stray_events(self, older_than_s: float = STRAY_EVENT_AGE_S) -> int:
        self.sweeps.append(older_than_s)
        if self.fail:
            self.fail -= 1
            raise OperationalError("SELECT", {}, ConnectionRefusedError("the database is away"))
        return 0


async def test_a_failed_start_up_sweep_is_caught_up_at_once_until_one_succeeds():
    jobs = SweepsRecorded(fail=3)
    await jobs.sweep_at_start()  # fails: the database is away
    assert jobs.catch_up
    scheduler = Scheduler(tick_s=0.01)
    schedule_stray_sweep(scheduler, jobs)
    await scheduler.start()
    try:
        for _ in range(200):
            if not jobs.catch_up:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        await scheduler.stop()
    # every waiting event, however young, at each turn until a sweep succeeded; then none before 10 s
    assert jobs.sweeps == [0.0, 0.0, 0.0, 0.0]
    assert not jobs.catch_up


async def test_the_sweep_waits_one_interval_after_a_good_start():
    jobs = SweepsRecorded()
    await jobs.sweep_at_start()
    scheduler = Scheduler(tick_s=0.01)
    schedule_stray_sweep(scheduler, jobs)
    await scheduler.start()
    try:
        await asyncio.sleep(0.1)
    finally:
        await scheduler.stop()
    assert jobs.sweeps == [0.0]  # the start-up sweep only


async def test_an_event_s_own_job_takes_it_up_even_below_the_sweep_s_floor(sqlite_url):
    """The sweep's floor ("every event up to here is settled") can pass an event whose commit lagged
    behind a younger one's; that event's own job must still take it up, not look above it."""
    engine = make_database_engine(sqlite_url)
    try:
        flow = _flow(engine, decision(escalate=False))
        event_id = record_event(engine)
        jobs = ChannelJobs(flow, JobRunner(WorkerSettings()))
        jobs._swept_through = event_id + 10  # as if a sweep had found everything up to there settled
        jobs.submit_event(event_id, "telegram", SENDER)
        await jobs.runner.wait_idle()
        with Session(engine) as session:
            assert session.get(InboundEvent, event_id).status == EventStatus.received
            assert session.get(InboundOutcome, event_id).status == EventStatus.processed
    finally:
        engine.dispose()


async def test_a_backlog_of_strays_is_handed_to_every_worker_through_the_stream(sqlite_url, redis_url):
    """A worker that sweeps up a backlog (events whose jobs were lost while Redis was away) adds them to
    the jobs stream for every worker, once; a few strays, or a stream that is away, it runs itself."""
    import json

    import redis.asyncio as aioredis
    from redis.exceptions import ConnectionError as RedisConnectionError

    from helpdesk.channels.service import record_inbound
    from helpdesk.channels.tasks import INBOUND_EVENT, SPREAD_AT_LEAST
    from helpdesk.jobs.streams import STREAM, StreamPublisher
    from tests.helpdesk.conversations.test_turn_writes import INBOUND

    engine = make_database_engine(sqlite_url)
    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        await redis.delete(STREAM)
        flow = _flow(engine, decision(escalate=False))

        def store(count: int, prefix: str) -> list[int]:
            with Session(engine) as session:
                ids = [record_inbound(session, INBOUND.model_copy(update={
                    "sender_id": f"{prefix}{n % 5}", "external_id": f"{prefix}-{n}"}), raw={}).id
                       for n in range(count)]
                session.commit()
            return ids

        backlog = store(SPREAD_AT_LEAST + 5, "b")
        jobs = ChannelJobs(flow, JobRunner(WorkerSettings()), spread=StreamPublisher(redis).add_jobs)
        assert await jobs.sweep_stray_events(older_than_s=0.0) == len(backlog)
        entries = await redis.xrange(STREAM)
        handed = [json.loads(fields["job"]) for _id, fields in entries]
        assert [(job["kind"], job["event_id"]) for job in handed] == [(INBOUND_EVENT, i) for i in backlog]
        assert {job["sender_id"] for job in handed} == {f"b{n}" for n in range(5)}
        await jobs.runner.wait_idle()
        with Session(engine) as session:  # not run here: they wait in the stream for any worker
            assert all(session.get(InboundOutcome, i) is None for i in backlog)
        jobs._swept_through = 0
        await jobs.sweep_stray_events(older_than_s=0.0)  # the next sweep does not hand them out again
        assert await redis.xlen(STREAM) == len(backlog)

        async def away(_jobs) -> None:
            raise RedisConnectionError("Redis is away")

        with Session(engine) as session:  # settle the backlog: only what follows is left to sweep
            for event_id in backlog:
                session.add(InboundOutcome(event_id=event_id, status=EventStatus.processed))
            session.commit()
        stranded = store(SPREAD_AT_LEAST, "s")
        here = ChannelJobs(flow, JobRunner(WorkerSettings()), spread=away)
        assert await here.sweep_stray_events(older_than_s=0.0) == len(stranded)
        await here.runner.wait_idle()
        with Session(engine) as session:  # the stream was away: this worker ran them itself
            assert all(session.get(InboundOutcome, i).status == EventStatus.processed for i in stranded)
    finally:
        await redis.delete(STREAM)
        await redis.aclose()
        engine.dispose()

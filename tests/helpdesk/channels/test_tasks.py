"""The channels' periodic work on the scheduler: the stray-event sweep's timing and its catch-up."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import OperationalError

from helpdesk.channels.tasks import STRAY_EVENT_AGE_S, ChannelJobs, schedule_stray_sweep
from helpdesk.jobs.scheduler import Scheduler


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

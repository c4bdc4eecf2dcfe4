"""Processing in a child process, so that acknowledging webhooks never waits for it.

With ``CAREDESK_WORKER__MODE=process`` (what ``caredesk serve`` uses unless told otherwise) the
serving process only verifies, stores and acknowledges; a child process it starts and watches
(``caredesk worker`` in the "child" role, at a lower CPU priority) runs the NLU, the bot, the
outbox, the care schedule and the SLA check. A burst of 300 webhooks a second then queues work in
the database instead of queueing the acknowledgements behind it, and the platforms never time out.

The two processes talk through the embedded broker (``helpdesk.jobs.broker``): the serving
process publishes named jobs with plain JSON arguments (``{"kind": "inbound_event", "event_id": 42,
…}``; the domains register their handlers, see ``helpdesk.jobs.runner``) and the child publishes its
domain events and web chat frames back, so the inbox and the widget see them live. Jobs are only
hints: what they are about is in the database, and the domains' periodic work in the child sweeps it
up, so a job lost while the child restarts is late, never lost.

With ``CAREDESK_WORKER__MODE=external`` (the production compose file) the server starts no child:
the jobs go through a Redis Stream (``helpdesk.jobs.streams``) to the ``caredesk worker`` replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from helpdesk.core.aio import cancel_and_wait
from helpdesk.core.config import Settings
from helpdesk.core.subscription import start_following
from helpdesk.jobs.broker import LocalBroker
from helpdesk.jobs.runner import JobRunner

log = logging.getLogger(__name__)

JOBS_CHANNEL = "caredesk:jobs"
#: restart delays of a child that keeps dying (seconds)
RESTART_BACKOFF = (0.5, 1, 2, 5, 10, 30)
STOP_GRACE_S = 10.0


def broker_path() -> Path:
    """A socket path in a fresh private directory."""
    return Path(tempfile.mkdtemp(prefix="caredesk-")) / "broker.sock"


def _plain(value: Any) -> Any:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def settings_environment(settings: Settings) -> dict[str, str]:
    """The settings as CAREDESK_* variables, so the child runs with exactly the parent's settings
    (which may have been built in code rather than read from the environment)."""
    env = {}
    for name in type(settings).model_fields:
        value = _plain(getattr(settings, name).model_dump() if hasattr(getattr(settings, name), "model_dump")
                       else getattr(settings, name))
        env[f"CAREDESK_{name.upper()}"] = value if isinstance(value, str) else json.dumps(value)
    return env


class RemoteJobs:
    """The serving process's side: hands named jobs to the worker process, and starts and watches it
    when it is this process's child (``spawn``: it runs with ``settings``; otherwise ``caredesk
    worker`` runs elsewhere and the jobs go through Redis). ``start_jobs`` are dispatched when it
    starts without a child (jobs this server made before it stopped may not have left it)."""

    def __init__(self, bus: Any, settings: Settings, *, spawn: bool = True,
                 start_jobs: tuple[str, ...] = ()):
        self.settings = settings
        self.start_jobs = start_jobs
        self.bus = bus  # the LocalBroker, or a redis.asyncio client
        self.spawn = spawn
        self._loop = asyncio.get_running_loop()
        self._process: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._sender: asyncio.Task | None = None
        self._outgoing: asyncio.Queue[str] = asyncio.Queue()
        self._local: set[asyncio.Task] = set()
        self._stopping = False
        self.restarts = 0
        #: more environment for the child (e.g. where it keeps its metrics)
        self.child_env: dict[str, str] = {}

    @property
    def alive(self) -> bool | None:
        """The child runs and is connected to the broker (None: the worker runs elsewhere)."""
        if not self.spawn:
            return None
        return (self._process is not None and self._process.returncode is None
                and isinstance(self.bus, LocalBroker) and self.bus.peer_count() > 0)

    async def start(self) -> None:
        """Start sending jobs, and start the child and watch it."""
        self._sender = asyncio.create_task(self._send_jobs(), name="caredesk-job-sender")
        if not self.spawn:
            for name in self.start_jobs:
                self.dispatch(name)
        else:
            self._supervisor = asyncio.create_task(self._supervise(), name="caredesk-worker-supervisor")

    async def _send_jobs(self) -> None:
        # one sender, so jobs leave in the order they were made (one chat's events stay in order)
        while True:
            data = await self._outgoing.get()
            try:
                await self.bus.publish(JOBS_CHANNEL, data)
            except Exception as exc:  # the stored event is swept up by the worker later
                log.warning("could not hand a job to the worker (%s); it will be picked up later", exc)

    async def wait_connected(self, timeout: float = 60.0) -> None:
        """Wait until the child is connected (tests, readiness)."""
        deadline = self._loop.time() + timeout
        while not self.alive:
            if self._loop.time() > deadline:
                raise TimeoutError("the worker process did not connect")
            await asyncio.sleep(0.05)

    async def _spawn(self) -> asyncio.subprocess.Process:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
        env.update(settings_environment(self.settings))
        env["CAREDESK_WORKER__MODE"] = "child"
        env["CAREDESK_WORKER__BROKER_PATH"] = str(self.bus.path)
        env.update(self.child_env)
        nice, idle_class = self.settings.worker.nice, self.settings.worker.idle_class

        def lower_priority() -> None:  # runs in the child before exec; its threads inherit the class
            if idle_class:
                with contextlib.suppress(OSError, AttributeError):  # SCHED_IDLE is Linux's
                    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            if nice:
                with contextlib.suppress(OSError):
                    os.nice(nice)

        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", "from helpdesk.cli import app; app()", "worker", env=env,
            preexec_fn=lower_priority, stdin=asyncio.subprocess.DEVNULL)

    async def _supervise(self) -> None:
        failures = 0
        while not self._stopping:
            started = self._loop.time()
            self._process = await self._spawn()
            log.info("worker process %s started", self._process.pid)
            code = await self._process.wait()
            if self._stopping:
                return
            failures = 0 if self._loop.time() - started > 60 else failures + 1
            delay = RESTART_BACKOFF[min(failures, len(RESTART_BACKOFF) - 1)]
            self.restarts += 1
            log.error("worker process exited with %s; restarting in %.1fs", code, delay)
            await asyncio.sleep(delay)

    async def stop(self) -> None:
        """Ask the child to finish its jobs and stop; kill it if it does not."""
        self._stopping = True
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE_S)
            except TimeoutError:
                log.warning("worker process did not stop in %.0fs; killing it", STOP_GRACE_S)
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for task in (self._supervisor, self._sender):
            await cancel_and_wait(task)
        for task in list(self._local):
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 5)

    # -- the runner's interface -------------------------------------------------------------------

    def dispatch(self, name: str, /, **args: Any) -> None:
        """Have the worker process run the named job (callable from any thread)."""
        data = json.dumps({"kind": name, **args})
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._outgoing.put_nowait(data)
        else:  # from a sync route's thread
            self._loop.call_soon_threadsafe(self._outgoing.put_nowait, data)

    def submit(self, key: str, job: Callable[[], Awaitable[None]]) -> None:
        """Other background work runs here (it only prepares rows; sending is the child's)."""

        def start() -> None:
            task = asyncio.ensure_future(job())
            self._local.add(task)
            task.add_done_callback(self._local.discard)

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            start()
        else:
            self._loop.call_soon_threadsafe(start)

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Local work only: what the child does is not visible from here."""
        if self._local:
            await asyncio.wait_for(asyncio.gather(*self._local, return_exceptions=True), timeout)


async def follow_jobs(client: Any, runner: JobRunner, *, on_resubscribed: Callable[[], Awaitable[None]],
                      longest_pause_s: float = 5.0) -> asyncio.Task:
    """The child's side: run each job the serving process publishes (subscribed when this returns,
    or, if the transport is away at start, trying in the background).

    ``client`` is the BrokerClient of a child (or a Redis client: publish/subscribe, as the bench
    compares with the stream). A lost connection is taken up again for as long as it takes; jobs
    published meanwhile are lost with it, so ``on_resubscribed`` (the domains' catch-up) runs once
    the subscription is back."""
    return await start_following(client, JOBS_CHANNEL, lambda message: _run_job(runner, message),
                                 name="caredesk-worker-jobs", on_resubscribed=on_resubscribed,
                                 what="job subscription", longest_pause_s=longest_pause_s)


def _run_job(runner: JobRunner, message: dict[str, Any]) -> None:
    try:
        job = json.loads(message["data"])
        name = job.pop("kind")
        if not isinstance(name, str):
            raise TypeError("a job's kind is a string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring a malformed job: %s", exc)
        return
    runner.dispatch(name, **job)

"""Background retraining with live progress, activation and rollback, and keeping every process of
a deployment on the active model and the current FAQ answers.

A retrain trains the candidate in a worker process (the event loop and other requests never wait
on it, and it uses a second core), while the active model is tested in a thread of this process;
then both are compared and the candidate is stored with its metrics. Progress goes to the job's row
(so any process can report it) and live through the event bus as ``nlu_training_progress``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import queue as queue_module
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from anyio import to_thread
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import ConversationEngine
from helpdesk.audit import service as audit
from helpdesk.core.db import utcnow
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.core.events import EventBus
from helpdesk.jobs.scheduler import Scheduler
from helpdesk.nlu_admin.service import ModelHolder
from helpdesk.nlu_admin.store import DatabaseModelStore
from helpdesk.training import candidate, dataset
from helpdesk.training.comparison import compare
from helpdesk.training.dataset import TrainingSnapshot
from helpdesk.training.holdout import HOLDOUT_FRACTION, HOLDOUT_SEED
from helpdesk.training.models import JobStatus, NluTrainingJob, NluTrainingState
from helpdesk.training.service import Actor
from helpdesk.training.tasks import TrainingReloads
from bot import Knowledge
from nlu import Interpreter, ModelLoadError

log = logging.getLogger(__name__)

#: a running job whose process has not written for this long died with it
STALE_AFTER = timedelta(seconds=60)
HEARTBEAT_S = 1.0
#: overall progress: preparing up to here, then the candidate's own progress up to TESTED
PREPARED, TESTED = 0.05, 0.92


# ---------------------------------------------------------------------------------------------
# The steps of a job (synchronous, shared by the server and the command line)


def prepare_job(engine: Engine, store: DatabaseModelStore, actor: Actor) -> tuple[NluTrainingJob, TrainingSnapshot]:
    """Refuse a second concurrent retrain, read and split the training set, and record the job."""
    with Session(engine, expire_on_commit=False) as session:
        now = utcnow()
        # Write first: two processes starting a retrain at once queue on this row's lock, so the
        # second one sees the first one's job below (the seeded marker is there once seeded).
        session.execute(update(NluTrainingState).where(col(NluTrainingState.key) == dataset.SEEDED_KEY)
                        .values(updated_at=now))
        for job in session.exec(select(NluTrainingJob).where(
                col(NluTrainingJob.status).in_([JobStatus.queued, JobStatus.running]))).all():
            if job.heartbeat_at is not None and now - job.heartbeat_at < STALE_AFTER:
                raise Conflict(f"training job {job.id} is still running")
            job.status, job.error, job.finished_at = JobStatus.failed, "interrupted (its process stopped)", now
            session.add(job)
        snap = dataset.snapshot(session)
        job = NluTrainingJob(status=JobStatus.running, stage="preparing", progress=0.01,
                             requested_by=actor.id if actor.type == "agent" else None, data_revision=snap.revision,
                             baseline_version=store.active_version(), n_train=len(snap.train.examples),
                             n_holdout=len(snap.holdout.examples), n_review=len(snap.review), started_at=now,
                             heartbeat_at=now)
        session.add(job)
        session.commit()
        return job, snap


def test_texts(snap: TrainingSnapshot) -> list[str]:
    """The texts both models are tested on: held-out examples, then the review set."""
    return [example.text for example in snap.holdout.examples] + [text for text, _ in snap.review]


def predict_active(store: DatabaseModelStore, version: str | None, texts: list[str],
                   interpreter: Interpreter | None = None) -> tuple[list[candidate.Prediction] | None, bool]:
    """The active model's predictions, and whether it was trained on the held-out examples.

    ``interpreter`` is the active model already loaded in this process, if it is at hand.
    """
    if version is None:
        return None, False
    try:
        info = store.info(version)
    except KeyError:
        return None, False
    loop_marks = (info.metrics or {}).get("training_loop") or {}
    # Only a model trained by this loop with the same split is known not to have seen the held-out examples.
    saw_holdout = not (loop_marks.get("holdout_seed") == HOLDOUT_SEED
                       and loop_marks.get("holdout_fraction") == HOLDOUT_FRACTION)
    if interpreter is not None and interpreter.version == version:
        return candidate.predictions(interpreter, texts), saw_holdout
    return candidate.predict(store, version, texts), saw_holdout


def finish_job(engine: Engine, store: DatabaseModelStore, job_id: int, snap: TrainingSnapshot, trained: dict[str, Any],
               active: tuple[list[candidate.Prediction] | None, bool]) -> NluTrainingJob:
    """Store the candidate in the database with its metrics, compare, and close the job."""
    store_candidate(store, trained)
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(NluTrainingJob, job_id)
        baseline = job.baseline_version
    holdout = [(example.text, example.intent) for example in snap.holdout.examples]
    predictions, saw_holdout = active
    gold_entities = [[(e.entity, e.start, e.end) for e in example.entities] for example in snap.holdout.examples]
    comparison = compare(holdout, snap.review, trained["predictions"], predictions, active_version=baseline,
                         candidate_version=trained["version"], active_saw_holdout=saw_holdout,
                         holdout_entities=gold_entities)
    candidate_scores = comparison["holdout"]["candidate"] or {}
    store.set_metrics(trained["version"], {
        "accuracy": candidate_scores.get("accuracy"),
        "macro_f1": candidate_scores.get("macro_f1"),
        "weighted_f1": candidate_scores.get("weighted_f1"),
        "evaluated_on": "holdout",
        "n_holdout": len(holdout),
        "review_accuracy": (comparison["review"]["candidate"] or {}).get("accuracy"),
        "entity_f1": ((comparison.get("entities") or {}).get("candidate") or {}).get("f1"),
        "n_review": len(snap.review),
        "compared_with": baseline,
        "verdict": comparison["verdict"],
        "training_loop": {"job_id": job_id, "data_revision": snap.revision, "holdout_seed": HOLDOUT_SEED,
                          "holdout_fraction": HOLDOUT_FRACTION},
    })
    with Session(engine, expire_on_commit=False) as session:
        job = session.get(NluTrainingJob, job_id)
        now = utcnow()
        job.status, job.stage, job.progress = JobStatus.succeeded, "done", 1.0
        job.candidate_version, job.comparison, job.finished_at, job.heartbeat_at = (
            trained["version"], comparison, now, now)
        session.add(job)
        session.commit()
        return job


def store_candidate(store: DatabaseModelStore, trained: dict[str, Any]) -> None:
    """Put the candidate the training process made into the database; its directory becomes this
    host's cached copy (or is deleted)."""
    model_dir = Path(trained["model_dir"])
    try:
        store.add(model_dir, move=True)
    finally:
        shutil.rmtree(model_dir.parent, ignore_errors=True)


def fail_job(engine: Engine, job_id: int, error: str) -> None:
    """Record why a job failed."""
    with Session(engine) as session:
        job = session.get(NluTrainingJob, job_id)
        if job is not None:
            job.status, job.error, job.finished_at = JobStatus.failed, error[:2000], utcnow()
            session.add(job)
            session.commit()


def write_progress(engine: Engine, job_id: int, stage: str, progress: float) -> None:
    """Store a running job's progress (and that its process is alive)."""
    with Session(engine) as session:
        job = session.get(NluTrainingJob, job_id)
        if job is not None and job.status == JobStatus.running:
            job.stage, job.progress, job.heartbeat_at = stage[:64], progress, utcnow()
            session.add(job)
            session.commit()


def get_job(session: Session, job_id: int) -> NluTrainingJob:
    """One job, shown as failed when its process died; NotFound otherwise."""
    job = session.get(NluTrainingJob, job_id)
    if job is None:
        raise NotFound(f"training job {job_id} not found")
    stale = job.heartbeat_at is not None and utcnow() - job.heartbeat_at > STALE_AFTER
    if job.status in (JobStatus.queued, JobStatus.running) and stale:
        job.status, job.error = JobStatus.failed, "interrupted (its process stopped)"
    return job


def list_jobs(session: Session, limit: int = 20) -> list[NluTrainingJob]:
    """Recent jobs, newest first."""
    return list(session.exec(select(NluTrainingJob).order_by(col(NluTrainingJob.id).desc()).limit(limit)).all())


def record_decision(engine: Engine, actor: Actor, version: str, decision: str, **details: Any) -> None:
    """Note on the candidate's job and in the audit trail that a model was activated or discarded."""
    with Session(engine) as session:
        job = session.exec(select(NluTrainingJob).where(NluTrainingJob.candidate_version == version)).first()
        if job is not None:
            job.decision = decision
            session.add(job)
        audit.record(session, f"nlu_model_{decision}", "nlu_model", job.id if job is not None else None,
                     actor_type=actor.type, actor_id=actor.id, version=version, **details)
        session.commit()


@contextlib.contextmanager
def _model_errors(version: str) -> Iterator[None]:
    """A version the store does not have is NotFound; one that does not load is a Conflict."""
    try:
        yield
    except (KeyError, ValueError):
        raise NotFound(f"model version {version!r} not found") from None
    except ModelLoadError as exc:
        raise Conflict(f"model version {version!r} cannot be loaded: {exc}") from None


def activate_stored(engine: Engine, store: DatabaseModelStore, actor: Actor, version: str) -> str | None:
    """Move the store's active pointer to ``version`` from outside a server (the command line):
    running processes follow it. The model is loaded first, so a broken one is refused. Returns
    the version it replaced."""
    with _model_errors(version):
        store.load(version)
    previous = store.active_version()
    store.activate(version)
    record_decision(engine, actor, version, "activated", previous=previous)
    return previous


def discard_stored(engine: Engine, store: DatabaseModelStore, actor: Actor, version: str) -> None:
    """Delete a stored version that is not active."""
    if version not in {info.version for info in store.versions()}:
        raise NotFound(f"model version {version!r} not found")
    try:
        store.remove(version)
    except ValueError as exc:  # the active one
        raise Conflict(str(exc)) from None
    record_decision(engine, actor, version, "discarded")


@dataclass
class ModelView:
    """A stored model version with its metrics, whether it answers now, and the job that made it."""

    version: str
    created_at: str
    active: bool
    intents: int
    metrics: dict[str, Any] | None
    job_id: int | None
    decision: str | None


def list_models(engine: Engine, store: DatabaseModelStore) -> list[ModelView]:
    """Every stored version, newest first."""
    infos = store.versions()
    with Session(engine) as session:
        jobs = {job.candidate_version: job for job in session.exec(
            select(NluTrainingJob).where(col(NluTrainingJob.candidate_version).is_not(None))).all()}
    views = []
    for info in reversed(infos):
        job = jobs.get(info.version)
        views.append(ModelView(info.version, info.created_at, info.active, len(info.intents), info.metrics,
                               job.id if job else None, job.decision if job else None))
    return views


def run_job_here(engine: Engine, store: DatabaseModelStore, actor: Actor, report: candidate.Report) -> NluTrainingJob:
    """A whole retrain in this process (for the command line): prepare, train, test, compare.

    Progress goes to ``report`` and to the job's row, so a running server shows it too and knows the
    job is alive (a second retrain is refused meanwhile).
    """
    job, snap = prepare_job(engine, store, actor)
    last_write = [0.0]

    def progress(stage: str, fraction: float) -> None:
        overall = PREPARED + (TESTED - PREPARED) * fraction
        report(stage, overall)
        now = time.monotonic()
        if now - last_write[0] >= HEARTBEAT_S:
            last_write[0] = now
            write_progress(engine, job.id, stage, overall)

    try:
        texts = test_texts(snap)
        trained = candidate.train_candidate(job.id, str(store.training_root), snap.train, texts, report=progress)
        report("comparing with the active model", TESTED)
        active = predict_active(store, job.baseline_version, texts)
        job = finish_job(engine, store, job.id, snap, trained, active)
        report("done", 1.0)
        return job
    except BaseException as exc:
        fail_job(engine, job.id, f"{type(exc).__name__}: {exc}")
        raise


# ---------------------------------------------------------------------------------------------
# The loop inside a running server or worker


class TrainingLoop:
    """The training loop of one process: runs retrains and switches models; its ``reloads`` keep the
    process on the active model and the current FAQ answers (see ``helpdesk.training.tasks``).

    ``start`` lays the database's FAQ answers over the bot's knowledge and registers the reloads
    with the process's scheduler (or, without one, a scheduler of its own).
    """

    def __init__(self, engine: Engine, events: EventBus, models: ModelHolder, bot: ConversationEngine,
                 data_dir: Path, *, use_processes: bool = True, follow_interval_s: float = 1.0):
        self._engine = engine
        self.events = events
        self.models = models
        #: whose knowledge the FAQ answers are laid over
        self.bot = bot
        self.data_dir = data_dir
        self.use_processes = use_processes
        self.reloads = TrainingReloads(engine, events, models, bot, follow_interval_s=follow_interval_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: dict[int, asyncio.Task] = {}
        self._live: dict[int, tuple[str, float]] = {}
        self._start_lock = asyncio.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._pool_queue: Any = None
        self._relay: threading.Thread | None = None
        self._relay_stop = threading.Event()
        self._own_scheduler: Scheduler | None = None
        self.started = False

    @property
    def engine(self) -> Engine:
        """The database."""
        return self._engine

    @property
    def store(self) -> DatabaseModelStore:
        """The model store the running model comes from."""
        return self.models.store

    @property
    def base_knowledge(self) -> Knowledge:
        """The file FAQ, under the database's answers."""
        return self.reloads.base_knowledge

    # -- life cycle -----------------------------------------------------------------------------

    async def start(self, scheduler: Scheduler | None = None) -> None:
        """Lay the FAQ overrides over the bot's knowledge and start following other processes
        (on ``scheduler``, started by the caller; without one, on a scheduler of its own)."""
        self._loop = asyncio.get_running_loop()
        if scheduler is None:
            scheduler = self._own_scheduler = Scheduler(tick_s=self.reloads.follow_interval_s,
                                                        name="caredesk-nlu-follow")
        await self.reloads.start(scheduler)
        if self._own_scheduler is not None:
            await self._own_scheduler.start()
        self.started = True

    async def stop(self) -> None:
        """Stop following, abandon running jobs (they show as interrupted) and end the worker process."""
        if self._own_scheduler is not None:
            await self._own_scheduler.stop()
        await self.reloads.stop()
        for task in self._jobs.values():
            task.cancel()
        for task in list(self._jobs.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._relay_stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self.started = False

    async def faq_changed(self) -> None:
        """After an FAQ edit: use it here at once and tell the other processes."""
        await self.reloads.faq_changed()

    # -- jobs -----------------------------------------------------------------------------------

    async def start_job(self, actor: Actor) -> NluTrainingJob:
        """Start a retrain in the background; returns its job at once."""
        async with self._start_lock:
            await to_thread.run_sync(dataset.ensure_seeded, self.engine, self.data_dir)
            job, snap = await to_thread.run_sync(prepare_job, self.engine, self.store, actor)
            self._live[job.id] = ("preparing", 0.01)
            self._jobs[job.id] = asyncio.create_task(self._run(job.id, job.baseline_version, snap),
                                                     name=f"caredesk-nlu-train-{job.id}")
        await self._publish(job.id, JobStatus.running, "preparing", 0.01)
        return job

    def live_progress(self, job_id: int) -> tuple[str, float] | None:
        """The freshest progress of a job running in this process."""
        return self._live.get(job_id)

    async def wait(self, job_id: int) -> None:
        """Wait until a job of this process ends (tests, the bench)."""
        task = self._jobs.get(job_id)
        if task is not None:
            await asyncio.shield(task)

    async def wait_idle(self) -> None:
        """Wait until no job of this process is running, those started meanwhile included (tests)."""
        while running := [task for task in self._jobs.values() if not task.done()]:
            await asyncio.wait(running)  # waiting is all: asyncio.wait never cancels what it waits for

    async def _publish(self, job_id: int, status: str, stage: str, progress: float, **extra: Any) -> None:
        await self.events.publish("nlu_training_progress", job_id=job_id, status=str(status), stage=stage,
                                          progress=round(progress, 4), **extra)

    def _progress(self, job_id: int, stage: str, progress: float) -> None:
        """Record progress (in the event loop's thread) and publish it."""
        before = self._live.get(job_id)
        if before is not None and progress < before[1]:
            progress = before[1]  # never run backwards
        self._live[job_id] = (stage, progress)
        asyncio.ensure_future(self._publish(job_id, JobStatus.running, stage, progress))

    def _candidate_progress(self, job_id: int, stage: str, fraction: float) -> None:
        self._progress(job_id, stage, PREPARED + (TESTED - PREPARED) * fraction)

    async def _heartbeat(self, job_id: int) -> None:
        while True:
            stage, progress = self._live.get(job_id, ("running", 0.0))
            await to_thread.run_sync(write_progress, self.engine, job_id, stage, progress)
            await asyncio.sleep(HEARTBEAT_S)

    async def _run(self, job_id: int, baseline: str | None, snap: TrainingSnapshot) -> None:
        heartbeat = asyncio.create_task(self._heartbeat(job_id))
        try:
            texts = test_texts(snap)
            self._progress(job_id, "training the candidate", PREPARED)
            # The active model is tested here while the candidate trains in the worker process.
            loaded = self.models.interpreter_for(baseline) if baseline else None
            active = asyncio.ensure_future(to_thread.run_sync(predict_active, self.store, baseline, texts, loaded))
            trained = await self._train(job_id, snap, texts)
            self._progress(job_id, "comparing with the active model", TESTED)
            job = await to_thread.run_sync(finish_job, self.engine, self.store, job_id, snap, trained, await active)
            heartbeat.cancel()
            self._live[job_id] = ("done", 1.0)
            await self._publish(job_id, JobStatus.succeeded, "done", 1.0, candidate_version=job.candidate_version,
                                verdict=(job.comparison or {}).get("verdict"))
        except asyncio.CancelledError:
            heartbeat.cancel()
            await asyncio.shield(to_thread.run_sync(fail_job, self.engine, job_id, "cancelled (the server stopped)"))
            raise
        except Exception as exc:
            heartbeat.cancel()
            log.exception("training job %s failed", job_id)
            error = f"{type(exc).__name__}: {exc}"
            await to_thread.run_sync(fail_job, self.engine, job_id, error)
            await self._publish(job_id, JobStatus.failed, "failed", self._live.get(job_id, ("", 0.0))[1], error=error)
        finally:
            self._jobs.pop(job_id, None)
            self._live.pop(job_id, None)

    async def _train(self, job_id: int, snap: TrainingSnapshot, texts: list[str]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        root = str(self.store.training_root)
        if not self.use_processes:
            def report(stage: str, fraction: float) -> None:
                loop.call_soon_threadsafe(self._candidate_progress, job_id, stage, fraction)

            return await to_thread.run_sync(
                functools.partial(candidate.train_candidate, job_id, root, snap.train, texts, report=report))
        pool = self._worker_pool()
        try:
            return await loop.run_in_executor(pool, candidate.train_candidate, job_id, root, snap.train, texts)
        except BrokenProcessPool:
            self._pool = None  # the worker died (e.g. out of memory): the next retrain starts a new one
            raise RuntimeError("the training worker process stopped unexpectedly") from None

    def warm_up(self) -> None:
        """Start the training worker process ahead of a retrain (an admin opened the training page),
        so the click on "retrain" does not wait for it to start and import the NLU library."""
        if not self.use_processes or self._pool is not None:
            return
        try:
            future = self._worker_pool().submit(candidate.warm_up)
        except (RuntimeError, OSError, BrokenProcessPool):
            log.warning("could not start the NLU training worker ahead of time", exc_info=True)
            self._pool = None
            return
        future.add_done_callback(self._warmed)

    def _warmed(self, future: Any) -> None:
        if not future.cancelled() and future.exception() is not None:
            log.warning("the NLU training worker failed to start: %s", future.exception())

    def _worker_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: this process runs threads (the event loop, anyio's workers) that a
            # fork would copy mid-flight, locks included.
            context = multiprocessing.get_context("spawn")
            self._pool_queue = context.Queue()
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=candidate.init_worker,
                                             initargs=(self._pool_queue,))
            self._relay_stop = threading.Event()
            self._relay = threading.Thread(target=self._relay_progress, args=(self._pool_queue, self._relay_stop),
                                           name="caredesk-nlu-progress", daemon=True)
            self._relay.start()
        return self._pool

    def _relay_progress(self, progress_queue: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                job_id, stage, fraction = progress_queue.get(timeout=0.5)
            except queue_module.Empty:
                continue
            except (EOFError, OSError):
                return
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._candidate_progress, job_id, stage, fraction)

    # -- models ---------------------------------------------------------------------------------

    async def activate(self, actor: Actor, version: str) -> tuple[str, str | None]:
        """Switch this process to ``version`` (requests in flight finish on the old model) and tell the
        others; returns (version, previous version)."""
        models = self.models
        if models.uses_rasa:
            raise Conflict("parsing goes to a Rasa server (CAREDESK_NLU__RASA_URL): activate models there")
        async with self.reloads.activation_lock:
            previous = models.version
            with _model_errors(version):
                await to_thread.run_sync(models.activate, version)
        await to_thread.run_sync(functools.partial(record_decision, self.engine, actor, version, "activated",
                                                   previous=previous))
        await self.events.publish("nlu_model_activated", version=version, previous=previous)
        return version, previous

    async def discard(self, actor: Actor, version: str) -> None:
        """Delete a stored version that is not active."""
        await to_thread.run_sync(discard_stored, self.engine, self.store, actor, version)

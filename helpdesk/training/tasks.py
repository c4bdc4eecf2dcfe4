"""The training domain's periodic work: keeping this process on the active NLU model and the
current FAQ answers.

A model switch made by another process (or by ``caredesk nlu activate``) reaches this one within
``follow_interval_s``, or at once when ``nlu_model_activated`` arrives on the event bus (with Redis
or the embedded broker); an FAQ edit made elsewhere arrives as ``nlu_faq_changed``, and the FAQ's
revision is also looked at every few intervals in case that event was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from anyio import to_thread
from sqlalchemy.engine import Engine

from bot import ConversationEngine
from helpdesk.core.events import EventBus
from helpdesk.jobs.scheduler import Scheduler
from helpdesk.nlu_admin.service import ModelHolder
from helpdesk.training import faq

log = logging.getLogger(__name__)

#: the FAQ's revision is looked at every this many model follows
FAQ_CHECK_EVERY = 5
#: names of the periodic work registered here
MODEL_FOLLOW = "NLU model follow"
FAQ_CHECK = "FAQ answers check"


class TrainingReloads:
    """What this process answers with: the active model of the store, the FAQ answers of the database."""

    def __init__(self, engine: Engine, events: EventBus, models: ModelHolder, bot: ConversationEngine, *,
                 follow_interval_s: float = 1.0):
        self.engine = engine
        self.events = events
        self.models = models
        #: whose knowledge the FAQ answers are laid over
        self.bot = bot
        self.follow_interval_s = follow_interval_s
        #: the file FAQ, under the database's answers
        self.base_knowledge = bot.knowledge
        #: held while this process switches models (an activation here, or a follow)
        self.activation_lock = asyncio.Lock()
        self._faq_revision: tuple[int, str] | None = None
        #: an active version this process could not load (a corrupt artefact): not read again every
        #: interval, and the model answering now stays
        self._refused_version: str | None = None
        self._events_queue: asyncio.Queue | None = None
        self._listener: asyncio.Task | None = None
        self._scheduler: Scheduler | None = None

    async def start(self, scheduler: Scheduler) -> None:
        """Lay the FAQ overrides over the bot's knowledge and follow other processes on ``scheduler``."""
        await to_thread.run_sync(self.refresh_faq)
        self._scheduler = scheduler
        scheduler.add(MODEL_FOLLOW, self.follow_logged, every_s=self.follow_interval_s)
        scheduler.add(FAQ_CHECK, self.check_faq_logged, every_s=self.follow_interval_s * FAQ_CHECK_EVERY)
        self._events_queue = self.events.subscribe()
        self._listener = asyncio.create_task(self._listen(), name="caredesk-nlu-listen")

    async def stop(self) -> None:
        """Stop listening to the other processes."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._events_queue is not None:
            self.events.unsubscribe(self._events_queue)
            self._events_queue = None

    def refresh_faq(self) -> None:
        """Give the bot the file FAQ with the database's answers laid over it."""
        revision = faq.revision(self.engine)  # read first: an edit in between is caught next time
        self.bot.knowledge = faq.overlay(self.base_knowledge, faq.load_rows(self.engine))
        self._faq_revision = revision

    async def faq_changed(self) -> None:
        """After an FAQ edit: use it here at once and tell the other processes."""
        await to_thread.run_sync(self.refresh_faq)
        await self.events.publish("nlu_faq_changed")

    async def follow_active_model(self) -> bool:
        """Load the store's active model if this process answers with another one; whether it did.

        Each call reads only the active pointer; the model itself is read when the pointer moved. A
        version that fails to load raises once and is then left alone (the current model answers)
        until the pointer moves again.
        """
        models = self.models
        if models.uses_rasa:
            return False
        version = await to_thread.run_sync(models.store.active_version)
        if version is None or version in (models.version, self._refused_version):
            return False
        async with self.activation_lock:
            if await to_thread.run_sync(models.store.active_version) == models.version:
                return False
            try:
                await to_thread.run_sync(models.load_active)
            except Exception:
                self._refused_version = version
                raise
        self._refused_version = None
        log.info("NLU model %s activated elsewhere; answering with it now", models.version)
        return True

    async def follow_logged(self) -> None:
        """``follow_active_model`` for the scheduler, logging a failure (tried again next time)."""
        try:
            await self.follow_active_model()
        except Exception:
            log.exception("following the active NLU model or the FAQ answers failed; trying again")

    async def check_faq_logged(self) -> None:
        """Reload the FAQ answers if their revision moved (an ``nlu_faq_changed`` that got lost)."""
        try:
            if await to_thread.run_sync(faq.revision, self.engine) != self._faq_revision:
                await to_thread.run_sync(self.refresh_faq)
        except Exception:
            log.exception("following the active NLU model or the FAQ answers failed; trying again")

    async def _listen(self) -> None:
        assert self._events_queue is not None
        while True:
            event = await self._events_queue.get()
            if event.name == "nlu_model_activated":
                if self._scheduler is not None:
                    self._scheduler.run_soon(MODEL_FOLLOW)
            elif event.name == "nlu_faq_changed":
                try:
                    await to_thread.run_sync(self.refresh_faq)
                except Exception:
                    log.exception("reloading the FAQ answers failed")

"""The composition root: builds the application's parts from the settings, hands each domain only the
parts it uses, and starts and stops them.

Only ``helpdesk.app``, ``helpdesk.cli`` and tests import this module; no domain does. Routes reach a
part through its FastAPI dependency (``helpdesk.core.deps``: settings, engine, events, clock; a
domain's own in its package, e.g. ``helpdesk.channels.deps``, ``helpdesk.jobs.deps``), which reads it
from ``app.state.wiring``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from anyio import CapacityLimiter, to_thread
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from bot import ConversationEngine, Knowledge, Responses
from bot.context import Services
from bot.state import DialogueStateStore, RedisStateStore
from connectors import CONNECTORS, ChannelConnector
from helpdesk.agents.login import Logins
from helpdesk.attachments.service import AttachmentService
from helpdesk.attachments.storage import build_storage
from helpdesk.attachments.tasks import (
    register_attachment_jobs,
    register_attachment_listeners,
    schedule_attachment_work,
)
from helpdesk.care.directory import DatabaseCustomerDirectory
from helpdesk.care.listeners import register_care_listeners
from helpdesk.care.tasks import (
    CareSender,
    care_composer,
    care_policy,
    schedule_care_check,
    schedule_zns_rating_poll,
    send_due_care_soon,
)
from helpdesk.care.zns import ZnsCare
from helpdesk.campaigns.listeners import register_campaign_listeners
from helpdesk.campaigns.tasks import CampaignSender, schedule_campaign_sends
from helpdesk.care.zns_mapping import apply_saved_mapping, mapping_store
from helpdesk.care.mail import build_email_care
from helpdesk.mail.tasks import build_email_inbox, schedule_email_poll
from connectors.zalo_zns import ZnsClient, ZnsError
from helpdesk.channels.checks import check_channel_credentials
from helpdesk.channels.credentials import DatabaseCredentialStore
from helpdesk.channels.edge import EdgeWriter, GroupCommitWriter, InboundEdge
from helpdesk.channels.ledger import make_database_engine, make_ledger_engine
from helpdesk.channels.tasks import (
    SWEEP_EVENTS,
    ChannelJobs,
    register_channel_jobs,
    schedule_outbox_pump,
    schedule_stray_sweep,
)
from helpdesk.conversations.flows import ConversationFlow
from helpdesk.conversations.listeners import HandbackNotifier, register_conversation_listeners
from helpdesk.conversations.state_store import DatabaseStateStore
from helpdesk.conversations.typing import TypingRelay
from helpdesk.core.clock import Clock
from helpdesk.core.config import Settings
from helpdesk.core.crypto import secret_box
from helpdesk.core.metrics import MULTIPROC_ENV
from helpdesk.core.db import checkpoint
from helpdesk.core.events import EventBus
from helpdesk.core.looplag import LoopLagMonitor
from helpdesk.core.outages import when_available
from helpdesk.core.security import PASSWORD_HASHING_CONCURRENCY, PasswordHashing
from helpdesk.deploy import prepare_database
from helpdesk.jobs.broker import BrokerClient, LocalBroker
from helpdesk.jobs.locks import RedisKeyLocks
from helpdesk.jobs.parked import park_job
from helpdesk.jobs.remote import RemoteJobs, broker_path, follow_jobs
from helpdesk.jobs.runner import JobRunner
from helpdesk.jobs.scheduler import ClusterOnce, Scheduler
from helpdesk.jobs.streams import PoisonJob, StreamConsumer, StreamPublisher
from helpdesk.nlu_admin.service import ModelHolder
from helpdesk.nlu_admin.store import DatabaseModelStore
from helpdesk.outbox.service import Outbox, RetryPolicy
from helpdesk.push.tasks import PushSender, register_push_jobs, register_push_listeners
from helpdesk.nps.listeners import register_nps_listeners
from helpdesk.ratings.listeners import CsatRequester, register_ratings_listeners
from helpdesk.search.indexes import build_missing as build_search_indexes
from helpdesk.shop.directory import DatabaseShopDirectory
from helpdesk.sla.listeners import register_sla_listeners
from helpdesk.sla.tasks import schedule_sla_check
from helpdesk.training.jobs import TrainingLoop

log = logging.getLogger(__name__)


#: the longest a Redis command may take before it counts as Redis being away, and a connection attempt
REDIS_COMMAND_TIMEOUT_S = 10.0
REDIS_CONNECT_TIMEOUT_S = 5.0

class WorkerMode(StrEnum):
    """Where background processing runs (``CAREDESK_WORKER__MODE``)."""

    #: in this process (what "auto" means)
    INLINE = "inline"
    #: in a child process this serving process starts and watches, through the embedded broker
    PROCESS = "process"
    #: this process is that child
    CHILD = "child"
    #: ``caredesk worker`` following a server in "external" mode through Redis
    WORKER = "worker"
    #: this server hands its jobs through Redis to ``caredesk worker`` processes elsewhere
    EXTERNAL = "external"


#: the modes whose jobs run in another process (this one only hands them over)
REMOTE_MODES = (WorkerMode.PROCESS, WorkerMode.EXTERNAL)


def worker_mode(settings: Settings) -> WorkerMode:
    """The mode the settings ask for ("auto" is inline)."""
    return WorkerMode.INLINE if settings.worker.mode == "auto" else WorkerMode(settings.worker.mode)


def build_job_runner(mode: WorkerMode, settings: Settings, *, transport: object = None) -> JobRunner | RemoteJobs:
    """The job queue of a process in ``mode``: one that hands named jobs to a worker process (through
    ``transport``, the embedded broker or Redis) in "process" and "external" modes, otherwise a runner
    that runs them here (the caller registers the domains' jobs with it). A ``caredesk worker``
    (``transport``: Redis) holds each chat's lock across the worker replicas."""
    if mode in REMOTE_MODES:
        # Without a child, jobs this server made before it stopped may not have left it: the
        # workers take up every waiting event now rather than at their next look for strays.
        return RemoteJobs(transport, settings, spawn=mode == WorkerMode.PROCESS, start_jobs=(SWEEP_EVENTS,))
    shared_locks = (RedisKeyLocks(transport, ttl_s=settings.worker.lock_ttl_s)
                    if mode == WorkerMode.WORKER and transport is not None else None)
    return JobRunner(settings.worker, concurrency=settings.worker.concurrency, shared_locks=shared_locks)


class ConnectorServices:
    """What the application lends the connectors it builds (see ChannelServices)."""

    def __init__(self, settings: Settings, engine: Engine):
        self.environment = settings.environment
        self._engine = engine
        self._box = secret_box(settings)

    def credential_store(self, channel: str, model: type[BaseModel]) -> DatabaseCredentialStore:
        """The channel's credentials, encrypted with the secret key, in this database."""
        return DatabaseCredentialStore(self._engine, self._box, channel, model)


def build_connectors(settings: Settings, engine: Engine) -> dict[str, ChannelConnector]:
    """Every registered channel that has what it needs to run; the others are logged as off."""
    services = ConnectorServices(settings, engine)
    enabled = {}
    for name, connector_class in CONNECTORS.items():
        config = getattr(settings, name) if connector_class.config_model is not None else None
        connector = connector_class.from_config(config, services)
        if connector.enabled:
            enabled[name] = connector
        else:
            log.info("channel %s is off (no credentials configured)", name)
    return enabled


def build_zns_care(settings: Settings, engine: Engine, connectors: dict[str, ChannelConnector], clock: Clock,
                   events: EventBus) -> ZnsCare | None:
    """The ZNS care channel when templates are mapped; it sends with the Zalo OA channel's token."""
    if not settings.zns.enabled:
        return None
    oa = connectors.get("zalo_oa")
    if oa is None:
        log.error("CAREDESK_ZNS__TEMPLATES is set but the Zalo OA channel is off: ZNS sends with the OA's "
                  "access token, so set CAREDESK_ZALO_OA__* too; ZNS stays off")
        return None
    client = ZnsClient(settings.zns, oa.access_token, oa.renew_access_token)
    return ZnsCare(engine, client, care_policy(settings), clock, dict(settings.zns.templates),
                   dict(settings.zns.parameters), events)


async def check_zns_templates_at_start(zns: ZnsCare) -> None:
    """Refuse to start with a template mapping that cannot work (ZnsConfigurationError); when Zalo cannot
    be asked now, the first ZNS send asks."""
    try:
        await zns.check_templates()
    except ZnsError as error:
        log.warning("could not check the ZNS templates with Zalo (%s); the first ZNS send checks them",
                    error.reason)


class Wiring:
    """Everything a running CareDesk needs, built from the settings."""

    def __init__(self, settings: Settings):
        self.settings = settings
        #: the time source of scheduled and business work; tests point it at a fake (``clock.use``)
        self.clock = Clock()
        self.engine = make_database_engine(settings.database_url, pool_size=settings.database_pool_size,
                                           max_overflow=settings.database_max_overflow)
        #: on SQLite, the webhook edge stores from the event loop, many requests a transaction, into
        #: the inbound ledger's own file (channels.ledger.inbound_database_path), which nothing else writes;
        #: its connections fail at once on a locked file (the loop must not sleep in SQLite's busy
        #: handler) and the edge tries again itself (see channels.edge)
        self.edge_engine = self.engine
        if self.engine.dialect.name == "sqlite":
            # ... and never checkpoint the journal on the loop (an fsync): a thread does (see EdgeWriter)
            self.edge_engine = make_ledger_engine(settings.database_url, sqlite_busy_timeout_ms=0,
                                                  sqlite_autocheckpoint=False)
        self.connectors = build_connectors(settings, self.engine)
        #: agents' "typing" to the customers' channels, straight from this process (not the outbox)
        self.typing = TypingRelay(self.connectors)
        #: the active NLU model, from the database (settings.nlu.models_dir is this host's cache of it)
        self.models = ModelHolder(DatabaseModelStore(self.engine, settings.nlu.models_dir), settings.nlu.rasa_url,
                                  settings.nlu.rasa_timeout_s)
        self.redis = None
        if settings.redis_url:
            import redis.asyncio as aioredis

            # No command may wait for ever on a connection that went half-open or was left mid-reply:
            # a reply later than REDIS_COMMAND_TIMEOUT_S is an error the caller tries again (the
            # stream's blocking read asks for 1 s; pub/sub reads are not bound by it).
            self.redis = aioredis.from_url(settings.redis_url, decode_responses=True,
                                           socket_timeout=REDIS_COMMAND_TIMEOUT_S,
                                           socket_connect_timeout=REDIS_CONNECT_TIMEOUT_S,
                                           health_check_interval=30)
        #: where processing runs (see WorkerMode)
        self.mode = worker_mode(settings)
        if self.mode == WorkerMode.EXTERNAL and self.redis is None:
            raise ValueError("CAREDESK_WORKER__MODE=external hands jobs to `caredesk worker` through Redis: "
                             "set CAREDESK_REDIS_URL")
        #: without Redis, the serving process and its child share events through the embedded broker
        self.broker: LocalBroker | BrokerClient | None = None
        if self.mode == WorkerMode.PROCESS:
            self.broker = LocalBroker(Path(settings.worker.broker_path) if settings.worker.broker_path
                                      else broker_path())
        elif self.mode == WorkerMode.CHILD:
            if not settings.worker.broker_path:
                raise ValueError("CAREDESK_WORKER__MODE=child needs CAREDESK_WORKER__BROKER_PATH")
            self.broker = BrokerClient(Path(settings.worker.broker_path))
        serves_webhooks = self.mode != WorkerMode.CHILD
        self.edge_writer: EdgeWriter | GroupCommitWriter | None = None
        if serves_webhooks:
            self.edge_writer = (EdgeWriter(self.edge_engine, partial(checkpoint, self.edge_engine))
                                if self.engine.dialect.name == "sqlite" else GroupCommitWriter(self.engine))
        self.inbound = InboundEdge(self.engine, self.edge_writer)
        if self.redis is not None:
            self.typing.share_across_replicas(self.redis)
        fan_out = self.redis if self.redis is not None else self.broker
        if fan_out is not None:
            for connector in self.connectors.values():
                connector.share_across_processes(fan_out)
        # On PostgreSQL the dialogue state rides on a turn's own statements (read with its event,
        # written with its answer: no round trip of its own); on SQLite with Redis, Redis keeps it.
        state_store: DialogueStateStore = (
            RedisStateStore(self.redis) if self.redis is not None and self.engine.dialect.name == "sqlite"
            else DatabaseStateStore(self.engine)
        )
        data = settings.data_dir
        responses = Responses.load(data / "bot", settings.shop.default_locale)
        self.customers = DatabaseCustomerDirectory(self.engine, settings, responses, self.clock)
        self.bot = ConversationEngine(
            parser=self.models,
            responses=responses,
            knowledge=Knowledge.load(data / "faq"),
            state_store=state_store,
            default_locale=settings.shop.default_locale,
            fallbacks_before_handoff=settings.bot.fallbacks_before_handoff,
            template_values={"shop": settings.shop.name},
            services=Services(shop=DatabaseShopDirectory(self.engine), customers=self.customers,
                              timezone=settings.shop.timezone),
        )
        self.events = EventBus(fan_out)
        #: where attachments' bytes live (this host's disk, or an S3-compatible store), and the files'
        #: domain: downloads of customers' files, agents' and visitors' uploads, signed links
        self.storage = build_storage(settings.storage)
        self.attachments = AttachmentService(self.engine, self.storage, self.connectors, self.events, settings)
        #: queued messages sent in order per chat, each send recorded, failed ones retried
        self.outbox = Outbox(self.engine, self.connectors, self.events,
                             RetryPolicy(settings.outbox.max_attempts, settings.outbox.base_backoff_s,
                                         settings.outbox.max_backoff_s), files=self.attachments)
        self.flow = ConversationFlow(self.engine, self.bot, self.events, self.connectors, self.outbox,
                                     settings.worker)
        self.care = CareSender(self.engine, settings, self.bot, self.connectors, self.events, self.clock,
                               self.outbox, zns=build_zns_care(settings, self.engine, self.connectors, self.clock,
                                                               self.events))
        self.care.email = build_email_care(settings, self.engine, self.clock, self.bot, self.events,
                                           lambda: care_composer(self.bot, settings))
        #: campaigns send through care's channels
        self.campaigns = CampaignSender(self.engine, settings, self.care, self.clock)
        self.mail = build_email_inbox(settings, self.engine, self.connectors, self.inbound,
                                      lambda: getattr(self, "worker", None),
                                      self._email_bounce, self._email_unsubscribe)
        #: channel -> readers of its verified webhook events besides the channel's own processing
        self.webhook_taps: dict[str, list[Callable[[Any], Awaitable[None]]]] = {}
        if self.care.zns is not None:
            self.webhook_taps.setdefault("zalo_oa", []).append(self.care.zns.take_payload)
        self.csat = CsatRequester(self.engine, self.events, responses, self.clock)
        self.handback = HandbackNotifier(self.engine, self.events, responses)
        #: Web Push to the agents' browsers while their inbox is closed
        self.push = PushSender(self.engine, settings)
        #: where background jobs go, once started: this process's runner, or the transport to the
        #: worker process (None: a script, or before start)
        self.worker: JobRunner | RemoteJobs | None = None
        #: the channels' jobs and the periodic work, in a process that runs the jobs
        self.channel_jobs: ChannelJobs | None = None
        self.scheduler: Scheduler | None = None
        #: the admin training loop (retrains, model switches, FAQ answers edited in the admin pages)
        self.training: TrainingLoop | None = None
        #: watches this process's event loop for stalls (synchronous work that ran on it)
        self.loop_lag = LoopLagMonitor(settings.loop_lag_warn_ms / 1000)
        #: password hashes run in threads of their own at a lower CPU priority, so that a burst of
        #: logins neither takes the worker threads that sync routes need nor the event loop's CPU
        self.password_hashing = PasswordHashing()
        #: what logging in needs, once started (its slots are made on the running loop)
        self.logins: Logins | None = None
        self._jobs: asyncio.Task | None = None
        #: a ``caredesk worker``'s place in the consumer group of the jobs stream
        self.stream_consumer: StreamConsumer | None = None
        self._frozen = False
        self._credentials_check: asyncio.Task | None = None
        #: each channel's answer to the start-up credentials check ("ok", "rejected", "unchecked"),
        #: once it is in (the admin page's channel status)
        self.credential_checks: dict[str, str] = {}
        self._search_indexes: asyncio.Task | None = None
        #: where a worker child writes its metrics (process mode), read at each scrape of /metrics
        self.metrics_dir: str | None = None

    async def _email_bounce(self, bounce: Any) -> str:
        return await self.care.email.take_bounce(bounce) if self.care.email is not None else "unknown"

    async def _email_unsubscribe(self, token: str) -> Any:
        if self.care.email is None:
            raise ValueError("the email care channel is off")
        return await self.care.email.unsubscribe(token)

    def use_jobs(self, jobs: JobRunner | RemoteJobs) -> None:
        """Hand background work to ``jobs`` from now on (the domains that queue work hold it too)."""
        self.worker = jobs
        self.care.jobs = jobs
        self.csat.jobs = jobs
        self.handback.jobs = jobs
        self.attachments.jobs = jobs
        self.push.jobs = jobs

    def prepare_database(self) -> None:
        """Apply migrations and make sure the first admin exists."""
        prepare_database(self.engine, self.settings.admin)

    async def start(self) -> None:
        """Prepare storage, load the model and start background processing."""
        #: logins in progress at once (each checks its throttle, hashes, records): no more than there
        #: are hashing threads, so a burst cannot all pass the throttle before the first failure counts
        self.logins = Logins(self.engine, self.password_hashing,
                             CapacityLimiter(PASSWORD_HASHING_CONCURRENCY), self.settings.token_ttl_s)
        if self.mode != WorkerMode.CHILD:  # the serving process migrated before starting its child
            # started while the database is away (a restart in an outage, a whole stack starting at
            # once): wait for it rather than exit with the work undone
            await when_available(self.prepare_database, doing="preparing the database", first_pause_s=0.2)
        await to_thread.run_sync(self.models.load_active)
        if isinstance(self.broker, LocalBroker):
            await self.broker.start()
        elif isinstance(self.broker, BrokerClient):
            await self.broker.connect()
        await self.events.start()
        # Listeners that hand work to the worker come first: they submit it before anything awaits,
        # so whoever then waits for the worker to be idle waits for that work too.
        register_ratings_listeners(self.csat)
        register_nps_listeners(self.csat, self.settings, frozenset(
            name for name, connector in self.connectors.items() if connector.supports_buttons))
        register_conversation_listeners(self.handback)
        register_care_listeners(self.events, lambda: send_due_care_soon(self.care))
        register_campaign_listeners(self.events, self.engine)
        register_sla_listeners(self.events, self.engine, self.settings.shop.timezone)
        register_attachment_listeners(self.attachments)
        register_push_listeners(self.push, self.events)
        # each domain registers its periodic work; the scheduler turns every outbox pump interval;
        # with Redis, the work on shared state runs in one of the replicas per interval
        self.scheduler = Scheduler(tick_s=self.settings.outbox.pump_interval_s,
                                   gate=ClusterOnce(self.redis) if self.redis is not None else None)
        self.training = TrainingLoop(self.engine, self.events, self.models, self.bot, self.settings.data_dir)
        await self.training.start(self.scheduler)
        if self.mode in (WorkerMode.CHILD, WorkerMode.WORKER) and self.engine.dialect.name == "sqlite":
            # SQLite writes one transaction at a time anyway. With many threads, the one holding
            # the write lock also waits for the GIL behind the others at every step, and held
            # the lock for hundreds of milliseconds (the webhook edge waiting all along); one
            # thread for the blocking work keeps each transaction as short as its own work.
            to_thread.current_default_thread_limiter().total_tokens = 1
        transport = {WorkerMode.PROCESS: self.broker, WorkerMode.WORKER: self.redis,
                     WorkerMode.EXTERNAL: StreamPublisher(self.redis, maxlen=self.settings.worker.stream_maxlen)
                     if self.redis is not None else None}.get(self.mode)
        jobs = build_job_runner(self.mode, self.settings, transport=transport)
        if isinstance(jobs, RemoteJobs) and jobs.spawn:
            # the child's metrics reach this process's /metrics through files (see core.metrics)
            self.metrics_dir = tempfile.mkdtemp(prefix="caredesk-metrics-")
            jobs.child_env[MULTIPROC_ENV] = self.metrics_dir
        self.use_jobs(jobs)
        if isinstance(jobs, RemoteJobs):
            await jobs.start()
        else:
            # a worker replica hands a backlog it sweeps up (after a long Redis outage) to all of them
            spread = (StreamPublisher(self.redis, maxlen=self.settings.worker.stream_maxlen).add_jobs
                      if self.mode == WorkerMode.WORKER and self.redis is not None else None)
            self.channel_jobs = register_channel_jobs(self.flow, jobs, spread)
            register_attachment_jobs(self.attachments, jobs)
            register_push_jobs(self.push, jobs)
            if self.mode == WorkerMode.CHILD:
                # subscribed before the sweep of stored events, so nothing falls in between
                self._jobs = await follow_jobs(self.broker, jobs, on_resubscribed=self.channel_jobs.catch_up_now)
            elif self.mode == WorkerMode.WORKER and self.redis is not None:
                # jobs wait in the stream, so the order with the sweep does not matter; after an
                # outage of Redis, what the servers could not add meanwhile is swept up
                self.stream_consumer = StreamConsumer(self.redis, jobs, self.settings.worker,
                                                      park=self._park_job,
                                                      on_recovered=self.channel_jobs.sweep_soon)
                await self.stream_consumer.start()
            await self.channel_jobs.sweep_at_start()
            schedule_outbox_pump(self.scheduler, self.channel_jobs)
            schedule_care_check(self.scheduler, self.care)
            schedule_campaign_sends(self.scheduler, self.campaigns)
            schedule_zns_rating_poll(self.scheduler, self.care)
            schedule_email_poll(self.scheduler, self.mail, self.settings.email.imap_poll_interval_s)
            schedule_sla_check(self.scheduler, self.engine, self.events, self.clock, self.settings)
            schedule_stray_sweep(self.scheduler, self.channel_jobs)
            schedule_attachment_work(self.scheduler, self.attachments)
        if self.care.zns is not None:
            await apply_saved_mapping(self.care.zns, mapping_store(self.engine, self.settings))  # the admin's
            await check_zns_templates_at_start(self.care.zns)
        await self.scheduler.start()
        for name in self.connectors:
            log.info("channel %s is on", name)
        if self.mode != WorkerMode.CHILD:  # the serving process checks for its child
            # in the background: a platform that is slow to answer does not hold up the start
            self._credentials_check = asyncio.create_task(check_channel_credentials(self.connectors))
            self._credentials_check.add_done_callback(self._remember_credential_checks)
            # search indexes the migration left for a large table are built without blocking writes
            self._search_indexes = asyncio.create_task(self._build_search_indexes())
        if self.mode != WorkerMode.INLINE:
            # A long-running server process: what start-up built (the NLU model, aiogram's and the
            # ORM's classes) lives as long as the process. Frozen out of the collector, it is not
            # walked by every full collection: a long pause, which in the worker could come with
            # SQLite's write lock held and the webhook edge waiting behind it.
            gc.collect()
            gc.freeze()
            self._frozen = True
        self.loop_lag.start()  # after start-up's one-off work, which no request waits for

    def _remember_credential_checks(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            self.credential_checks = task.result()

    async def _build_search_indexes(self) -> None:
        try:
            await to_thread.run_sync(build_search_indexes, self.engine, abandon_on_cancel=True)
        except Exception:  # noqa: BLE001 - search works without the index, only slower: say so and go on
            log.exception("building the search indexes failed; the next start tries again")

    async def _park_job(self, job: PoisonJob) -> None:
        await to_thread.run_sync(park_job, self.engine, job)

    async def stop(self) -> None:
        """Finish background work and release connections."""
        await self.loop_lag.stop()
        if self.stream_consumer is not None:
            await self.stream_consumer.stop()
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        if self._jobs is not None:
            self._jobs.cancel()
        if self._credentials_check is not None:
            self._credentials_check.cancel()
        if self._search_indexes is not None:
            self._search_indexes.cancel()
        if self.scheduler is not None:
            await self.scheduler.stop()
        if self.worker is not None:
            await self.worker.stop()
        if self.training is not None:
            await self.training.stop()
        await self.events.stop()
        await self.typing.close()
        if self.broker is not None:
            await (self.broker.stop() if isinstance(self.broker, LocalBroker) else self.broker.aclose())
        for connector in self.connectors.values():
            await connector.close()
        if self.care.zns is not None:
            await self.care.zns.client.close()
        await self.storage.close()
        await self.push.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        self.password_hashing.close()
        self.engine.dispose()
        if self.edge_writer is not None:
            self.edge_writer.close()
        if self.edge_engine is not self.engine:
            self.edge_engine.dispose()
        if self.metrics_dir is not None:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            self.metrics_dir = None

"""``GET /metrics``: the Prometheus text of this process (and of its worker child), with the depth of
the queues read from the database and Redis at each scrape.

Who may read it (see ``MetricsSettings``): with ``CAREDESK_METRICS__TOKEN`` set, a request with that
bearer token; otherwise a client on loopback or a private network, so a server published on the
internet does not hand its figures to anyone who asks.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
from datetime import timedelta
from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request, Response
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import exists, func, select
from sqlalchemy.engine import Engine

from helpdesk.channels.models import EventStatus, InboundEvent, InboundOutcome
from helpdesk.core.config import Settings
from helpdesk.core.db import utcnow
from helpdesk.core.deps import client_address
from helpdesk.core.errors import Forbidden
from helpdesk.core.metrics import CONTENT_TYPE, render_metrics
from helpdesk.jobs.streams import GROUP as JOBS_GROUP
from helpdesk.jobs.streams import STREAM as JOBS_STREAM
from helpdesk.outbox.models import OutboxItem, OutboxStatus

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

#: how long a scrape waits for Redis
REDIS_TIMEOUT_S = 1.0
#: headers a proxy adds when it forwards a request for someone else
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
#: loopback, RFC 1918, link-local, IPv6 unique-local and link-local: where a scraper may sit without
#: a token (written out: ``ip_address.is_private`` also counts the documentation and reserved ranges)
PRIVATE_NETWORKS = tuple(ipaddress.ip_network(network) for network in (
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "::1/128", "fc00::/7", "fe80::/10"))
#: an event this old with every one below it settled is not looked at again (ids are handed out
#: before commit, so a younger one below the mark could still appear)
SETTLED_MARGIN = timedelta(minutes=1)

_events = InboundEvent.__table__
_outcomes = InboundOutcome.__table__
_outbox = OutboxItem.__table__


def may_read_metrics(request: Request, settings: Settings) -> bool:
    """Whether this request may read /metrics (see the module's docstring)."""
    token = settings.metrics.token.get_secret_value()
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    peer = request.client.host if request.client else None
    address = client_address(peer, request.headers.getlist("x-forwarded-for"), settings.trusted_proxies)
    if address == peer and any(name in request.headers for name in PROXY_HEADERS):
        return False  # a proxy CAREDESK_TRUSTED_PROXIES does not name, speaking for someone unknown
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in PRIVATE_NETWORKS if network.version == ip.version)


class QueueDepth:
    """Counts of stored work not done yet, cheap enough for every scrape: events are counted from
    the oldest unsettled one (a mark kept between scrapes, as the stray sweep keeps its own), the
    outbox through its status index."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._settled_through = 0

    def read(self) -> dict[str, int]:
        """Inbound events waiting, outbox items waiting and failed. Blocking."""
        unsettled = ~exists().where(_outcomes.c.event_id == _events.c.id)
        waiting = (_events.c.status == EventStatus.received, unsettled)
        with self.engine.connect() as connection:
            first = connection.execute(select(func.min(_events.c.id)).where(
                _events.c.id > self._settled_through, *waiting)).scalar()
            if first is None:
                events = 0
                mark = connection.execute(select(func.max(_events.c.id)).where(
                    _events.c.id > self._settled_through,
                    _events.c.received_at <= utcnow() - SETTLED_MARGIN)).scalar()
                if mark is not None:
                    self._settled_through = mark
            else:
                events = connection.execute(select(func.count()).where(_events.c.id >= first, *waiting)).scalar()
                self._settled_through = max(self._settled_through, first - 1)
            outbox = dict(connection.execute(
                select(_outbox.c.status, func.count()).where(
                    _outbox.c.status.in_([OutboxStatus.pending, OutboxStatus.failed]))
                .group_by(_outbox.c.status)).all())
        return {"events": events, "outbox_waiting": outbox.get(OutboxStatus.pending, 0),
                "outbox_failed": outbox.get(OutboxStatus.failed, 0)}


async def stream_length(redis: Any) -> int | None:
    """Jobs of the jobs stream not yet finished: those no worker has read (the group's lag) and those
    read and not acknowledged (pending); the stream's length when no worker has joined yet. None when
    Redis is not used, is away, or the key is not a stream."""
    if redis is None:
        return None
    try:
        if await asyncio.wait_for(redis.type(JOBS_STREAM), REDIS_TIMEOUT_S) != "stream":
            return None
        groups = await asyncio.wait_for(redis.xinfo_groups(JOBS_STREAM), REDIS_TIMEOUT_S)
        group = next((group for group in groups if group["name"] == JOBS_GROUP), None)
        if group is None or group.get("lag") is None:
            return int(await asyncio.wait_for(redis.xlen(JOBS_STREAM), REDIS_TIMEOUT_S))
        return int(group["lag"]) + int(group["pending"])
    except Exception as exc:  # the scrape still reports everything else
        log.warning("metrics: could not read the jobs stream's length: %s", exc)
        return None


def depth_families(depth: dict[str, int] | None, stream: int | None) -> list[GaugeMetricFamily]:
    """The queue depth gauge of one scrape."""
    gauge = GaugeMetricFamily("caredesk_queue_depth", "Work stored and not done yet, read at the scrape: "
                              "inbound events not processed, outbox items waiting to be sent or failed "
                              "for good, jobs in the Redis stream.", labels=["queue"])
    for queue, value in (depth or {}).items():
        gauge.add_metric([queue], value)
    if stream is not None:
        gauge.add_metric(["jobs_stream"], stream)
    return [gauge]


async def scrape(state: Any, wiring: Any) -> bytes:
    """The text of one scrape: the metrics of this process and its child, and the queue depths
    (``state``, an app's state, keeps the depth reader between scrapes)."""
    reader = getattr(state, "queue_depth", None)
    if reader is None:
        reader = state.queue_depth = QueueDepth(wiring.engine)
    try:
        depth = await to_thread.run_sync(reader.read)
    except Exception as exc:  # the database is away: the rest of the figures still count
        log.warning("metrics: could not read the queue depth: %s", exc)
        depth = None
    stream = await stream_length(wiring.redis)
    return await to_thread.run_sync(lambda: render_metrics(
        child_dir=getattr(wiring, "metrics_dir", None), extra=depth_families(depth, stream)))


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format, for a scraper on a private network or with the metrics token."""
    wiring = request.app.state.wiring
    if not may_read_metrics(request, wiring.settings):
        raise Forbidden("metrics are served to private networks, or with CAREDESK_METRICS__TOKEN")
    return Response(await scrape(request.app.state, wiring), media_type=CONTENT_TYPE)

"""Prometheus metrics of this process, and the text a scrape of ``/metrics`` returns.

The metrics are the standard client library's (prometheus_client), in its default registry. A
worker child process (``CAREDESK_WORKER__MODE=process``) is started with ``PROMETHEUS_MULTIPROC_DIR``
pointing at a private directory of the serving process, so the library writes the child's values
there; the serving process adds them to its own at each scrape (``render_metrics``), and one scrape
of ``/metrics`` sees both processes. A ``caredesk worker`` of its own (external mode) is scraped on
its own port (``CAREDESK_WORKER__HTTP_PORT``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

#: the environment variable the library reads at import to keep a child's values in files
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: an acknowledgement is expected in milliseconds; the top buckets catch a database that is slow
_ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
#: a job runs from milliseconds (a drain) to many seconds (a turn retried while the database is away)
_JOB_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

WEBHOOK_ACK_SECONDS = Histogram(
    "caredesk_webhook_ack_seconds", "Time from a webhook request reaching its route to the answer "
    "(verify, store, acknowledge), by channel.", ["channel"], buckets=_ACK_BUCKETS)
JOB_LATENCY_SECONDS = Histogram(
    "caredesk_job_latency_seconds", "Time from a job reaching this process's runner to its end (waiting "
    "behind the chat's earlier jobs, retries and running), by job name.", ["job"], buckets=_JOB_BUCKETS)
JOB_RUN_SECONDS = Histogram(
    "caredesk_job_run_seconds", "Running time of a job's attempts (without the waits), by job name.",
    ["job"], buckets=_JOB_BUCKETS)
MESSAGE_ANSWER_SECONDS = Histogram(
    "caredesk_message_answer_seconds", "Time from a customer message stored by the webhook edge to the end "
    "of its turn (the answer stored, its replies sent or queued), whichever process or replica ran it.",
    buckets=_JOB_BUCKETS)
MESSAGES_PROCESSED = Counter(
    "caredesk_messages_processed", "Customer messages (inbound events) whose turn ended, by outcome: "
    "answered, duplicate (another worker had settled it), failed (a failure of its own, tried again), "
    "parked (given up after the last try), retry (the database or Redis was away).", ["outcome"])
SLA_BREACHES = Counter("caredesk_sla_breaches", "SLA breaches recorded by the SLA check, by target.", ["target"])
SLA_WARNINGS = Counter("caredesk_sla_warnings", "SLA warnings (80% of a target) recorded, by target.", ["target"])
OUTBOX_FAILURES = Counter(
    "caredesk_outbox_failures", "Failed sends of outgoing messages: final (given up, the message is "
    "marked failed) or retry (due again later).", ["final"])


@contextmanager
def timed(histogram: Histogram, *labels: str) -> Iterator[None]:
    """Observe how long the block took (also when it raised)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.labels(*labels).observe(time.perf_counter() - started)


def _merged(families: Iterable[Metric]) -> list[Metric]:
    """Families of the same name (this process's and a child's) as one, equal samples summed.

    ``_created`` samples are left out: a timestamp per process has no sum, and the child's files
    have none to match."""
    merged: dict[str, Metric] = {}
    values: dict[str, dict[tuple, float]] = {}
    for family in families:
        merged.setdefault(family.name, Metric(family.name, family.documentation, family.type, family.unit))
        sums = values.setdefault(family.name, {})
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            key = (sample.name, tuple(sorted(sample.labels.items())))
            sums[key] = sums.get(key, 0.0) + sample.value
    for name, family in merged.items():
        for (sample_name, labels), value in values[name].items():
            family.add_sample(sample_name, dict(labels), value)
    return list(merged.values())


class _Scrape:
    """One scrape's families: this process's, a child's (from ``child_dir``) and ``extra``."""

    def __init__(self, child_dir: str | None, extra: Iterable[Metric]):
        self.child_dir = child_dir
        self.extra = list(extra)

    def collect(self) -> list[Metric]:
        families = list(REGISTRY.collect())
        if self.child_dir and os.path.isdir(self.child_dir):
            families.extend(MultiProcessCollector(None, path=self.child_dir).collect())
        return _merged(families) + self.extra


def render_metrics(*, child_dir: str | None = None, extra: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text of this process's metrics, a child's kept in ``child_dir``, and ``extra``
    families (e.g. queue depths read for this scrape). Blocking (reads files): call from a thread."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Scrape(child_dir, extra))
    return generate_latest(registry)

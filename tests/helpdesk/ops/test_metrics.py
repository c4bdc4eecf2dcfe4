"""``GET /metrics``: Prometheus text with the webhook, job, message, outbox and queue figures, served
only to private networks or with the metrics token."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session

from connectors.base import InboundMessage
from helpdesk.channels import service as channels
from helpdesk.ops.metrics_api import JOBS_GROUP, JOBS_STREAM
from tests.conftest import start_client
from tests.helpdesk.channels.test_telegram_flow import CHAT_ID, post_update, telegram_update


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scrape: dict, name: str, **labels: str) -> float:
    return scrape.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client) -> dict:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(response.text)


async def test_a_webhook_turn_shows_in_ack_latency_job_latency_and_messages_answered(telegram_client, fake_telegram):
    before = await scrape(telegram_client)
    assert (await post_update(telegram_client, telegram_update(5001, "bảo hành bao lâu vậy shop"))).status_code == 200
    await telegram_client.settle()
    assert fake_telegram.sent_messages(CHAT_ID)
    after = await scrape(telegram_client)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("caredesk_webhook_ack_seconds_count", channel="telegram") == 1
    assert grew("caredesk_webhook_ack_seconds_bucket", channel="telegram", le="+Inf") == 1
    assert grew("caredesk_job_latency_seconds_count", job="inbound_event") == 1
    assert grew("caredesk_job_run_seconds_count", job="inbound_event") == 1
    assert grew("caredesk_messages_processed_total", outcome="answered") == 1
    assert grew("caredesk_message_answer_seconds_count") == 1
    assert 0 < grew("caredesk_message_answer_seconds_sum") < 30  # stored at the webhook, answered since
    assert value(after, "caredesk_queue_depth", queue="events") == 0
    assert value(after, "caredesk_queue_depth", queue="outbox_waiting") == 0


async def test_unknown_channel_paths_add_no_series(telegram_client):
    assert (await telegram_client.post("/webhooks/no-such-channel", json={})).status_code == 404
    assert 'channel="no-such-channel"' not in (await telegram_client.get("/metrics")).text


async def test_queue_depth_counts_stored_events_not_yet_processed(client):
    """Events stored and never handed to a worker (the stray sweep would find them later) are the
    queue's depth, and leave it once processed."""
    message = InboundMessage(channel="cli", sender_id="cli-depth", external_id="depth-1", text="xin chào")

    def store() -> None:
        with Session(client.wiring.engine) as session:
            channels.record_inbound(session, message, {"text": "xin chào"})
            channels.record_inbound(session, message.model_copy(update={"external_id": "depth-2"}), {})
            session.commit()

    store()
    assert value(await scrape(client), "caredesk_queue_depth", queue="events") == 2
    await client.wiring.channel_jobs.catch_up_now()
    await client.settle()
    assert value(await scrape(client), "caredesk_queue_depth", queue="events") == 0


async def test_a_send_that_fails_for_good_counts_as_an_outbox_failure(telegram_client, fake_telegram):
    before = await scrape(telegram_client)
    fake_telegram.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    await post_update(telegram_client, telegram_update(5101, "bảo hành bao lâu vậy shop"))
    await telegram_client.settle()
    after = await scrape(telegram_client)
    assert value(after, "caredesk_outbox_failures_total", final="true") - value(
        before, "caredesk_outbox_failures_total", final="true") == 1
    assert value(after, "caredesk_queue_depth", queue="outbox_failed") == 1


async def test_the_jobs_stream_length_is_read_when_redis_holds_one(make_settings, redis_url):
    import redis.asyncio as aioredis

    async for client in start_client(make_settings(redis_url=redis_url)):
        assert value(await scrape(client), "caredesk_queue_depth", queue="jobs_stream") == 0  # no stream
        writer = aioredis.from_url(redis_url)
        try:
            await writer.xadd(JOBS_STREAM, {"kind": "sweep_events"})
            await writer.xadd(JOBS_STREAM, {"kind": "sweep_events"})
            assert value(await scrape(client), "caredesk_queue_depth", queue="jobs_stream") == 2
            # with the workers' group: jobs unread plus jobs read and not acknowledged, not the history
            await writer.xgroup_create(JOBS_STREAM, JOBS_GROUP, id="0")
            [[_stream, [(entry_id, _fields)]]] = await writer.xreadgroup(JOBS_GROUP, "w1", {JOBS_STREAM: ">"},
                                                                         count=1)
            assert value(await scrape(client), "caredesk_queue_depth", queue="jobs_stream") == 2
            await writer.xack(JOBS_STREAM, JOBS_GROUP, entry_id)
            assert value(await scrape(client), "caredesk_queue_depth", queue="jobs_stream") == 1
            await writer.delete(JOBS_STREAM)
            await writer.set(JOBS_STREAM, "not a stream")
            assert ("caredesk_queue_depth", (("queue", "jobs_stream"),)) not in await scrape(client)
        finally:
            await writer.delete(JOBS_STREAM)
            await writer.aclose()


def client_from(app, address: str, **kwargs) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://caredesk.test", **kwargs)


async def test_metrics_are_refused_to_a_public_address_and_served_to_private_ones(client):
    async with client_from(client.app, "203.0.113.7") as public:
        assert (await public.get("/metrics")).status_code == 403
    for address in ("10.1.2.3", "172.18.0.5", "192.168.1.9", "::1", "fd00::5"):
        async with client_from(client.app, address) as private:
            assert (await private.get("/metrics")).status_code == 200, address


async def test_a_request_an_untrusted_proxy_forwards_is_refused(client):
    """A reverse proxy on the same machine connects from loopback: what it forwards comes from
    anyone, unless CAREDESK_TRUSTED_PROXIES names it and the client it names is private."""
    assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})).status_code == 403


async def test_a_trusted_proxy_is_believed_about_its_client(make_settings):
    async for client in start_client(make_settings(trusted_proxies=["127.0.0.1"])):
        assert (await client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.7"})).status_code == 403
        assert (await client.get("/metrics", headers={"X-Forwarded-For": "10.0.0.8"})).status_code == 200


async def test_with_a_token_only_the_token_opens_metrics(make_settings):
    async for client in start_client(make_settings(metrics={"token": "scrape-token-123"})):
        assert (await client.get("/metrics")).status_code == 403  # loopback is not enough
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 403
        async with client_from(client.app, "203.0.113.7",
                               headers={"Authorization": "Bearer scrape-token-123"}) as remote:
            assert (await remote.get("/metrics")).status_code == 200


@pytest.mark.slow  # starts a Python process
def test_a_childs_figures_are_added_to_this_processs_not_listed_twice(tmp_path):
    """What a worker child counted (in its PROMETHEUS_MULTIPROC_DIR files) and what this process
    counted come out as one family, the equal series summed."""
    from prometheus_client import REGISTRY

    from helpdesk.core.metrics import MESSAGES_PROCESSED, render_metrics

    child = subprocess.run([sys.executable, "-c", "from helpdesk.core.metrics import MESSAGES_PROCESSED as m; "
                            "m.labels('answered').inc(2); m.labels('parked').inc()"],
                           env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}, capture_output=True,
                           text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    MESSAGES_PROCESSED.labels("answered").inc()
    own = REGISTRY.get_sample_value("caredesk_messages_processed_total", {"outcome": "answered"})
    text = render_metrics(child_dir=str(tmp_path)).decode()
    assert len([line for line in text.splitlines() if line.startswith("# TYPE caredesk_messages_processed")]) == 1
    scrape = samples(text)
    assert value(scrape, "caredesk_messages_processed_total", outcome="answered") == own + 2
    assert value(scrape, "caredesk_messages_processed_total", outcome="parked") >= 1

"""Metrics and probes of the worker processes: a worker child's figures reach the serving process's
/metrics; a ``caredesk worker`` serves /healthz, /readyz and /metrics on its own port and logs JSON."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx
import pytest

from helpdesk.jobs.remote import settings_environment
from tests.conftest import TELEGRAM_SECRET, LiveServer
from tests.helpdesk.jobs.test_worker_process import post_update, telegram_update, wait_until
from tests.helpdesk.ops.test_metrics import samples, value

pytestmark = pytest.mark.slow  # each test starts a server and a worker process


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_child_workers_figures_are_in_the_servers_scrape(make_settings, fake_telegram):
    settings = make_settings(worker={"mode": "process"},
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    with LiveServer(settings) as server:
        wait_until(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 60, "worker never became ready")
        first = httpx.get(f"{server.url}/metrics").text
        before = samples(first)
        for index in range(3):
            assert post_update(server, telegram_update(300 + index, 31337, f"bảo hành bao lâu {index}")).status_code == 200
        wait_until(lambda: len(fake_telegram.sent_messages(31337)) >= 3, 30, "no replies")
        # the turns ran in the child (this process only acknowledged): their figures came through its files
        after = wait_until(lambda: (lambda scrape: scrape if value(scrape, "caredesk_messages_processed_total",
                                                                    outcome="answered")
                                    - value(before, "caredesk_messages_processed_total", outcome="answered") >= 3
                                    else None)(samples(httpx.get(f"{server.url}/metrics").text)), 10,
                           "the child's answered messages never showed")
        assert value(after, "caredesk_job_latency_seconds_count", job="inbound_event") - value(
            before, "caredesk_job_latency_seconds_count", job="inbound_event") >= 3
        assert value(after, "caredesk_webhook_ack_seconds_count", channel="telegram") - value(
            before, "caredesk_webhook_ack_seconds_count", channel="telegram") == 3
        text = httpx.get(f"{server.url}/metrics").text
        assert text.count("# TYPE caredesk_job_latency_seconds histogram") == 1  # one family for both processes
        metrics_dir = server.server.config.app.state.wiring.metrics_dir
        assert metrics_dir and os.listdir(metrics_dir)
    assert not os.path.exists(metrics_dir)  # removed when the server stops


def test_caredesk_worker_serves_probes_and_metrics_and_logs_json(make_settings, fake_telegram, redis_url, tmp_path):
    settings = make_settings(worker={"mode": "external"}, redis_url=redis_url,
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    port = free_port()
    with LiveServer(settings) as server:
        env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
        env.update(settings_environment(settings))
        env.update({"CAREDESK_WORKER__MODE": "auto", "CAREDESK_WORKER__HTTP_PORT": str(port),
                    "CAREDESK_WORKER__HTTP_HOST": "127.0.0.1", "CAREDESK_LOG_FORMAT": "json"})
        stderr = (tmp_path / "worker.err").open("w")
        worker = subprocess.Popen([sys.executable, "-c", "from helpdesk.cli import app; app()", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        base = f"http://127.0.0.1:{port}"

        def answers(path: str) -> httpx.Response | None:
            assert worker.poll() is None, (tmp_path / "worker.err").read_text()
            try:
                return httpx.get(base + path)
            except httpx.TransportError:
                return None

        try:
            # the port opens before start-up (which may wait for the database): alive first, ready later
            wait_until(lambda: answers("/healthz"), 60, "the worker's port never opened")
            ready = wait_until(lambda: (lambda r: r if r.status_code == 200 else None)(answers("/readyz")), 60,
                               "the worker never became ready")
            assert ready.json()["checks"] == {"database": True, "migrations": True, "nlu_model": True, "redis": True}
            assert post_update(server, telegram_update(601, 9002, "bảo hành bao lâu vậy shop")).status_code == 200
            wait_until(lambda: fake_telegram.sent_messages(9002), 30, "the worker never answered")
            scrape = wait_until(lambda: (lambda s: s if value(s, "caredesk_messages_processed_total",
                                                              outcome="answered") == 1 else None)(
                samples(answers("/metrics").text)), 10, "the worker's /metrics never counted the answer")
            assert value(scrape, "caredesk_job_run_seconds_count", job="inbound_event") == 1
            assert answers("/webhooks/telegram").status_code == 404  # probes and metrics only
        finally:
            worker.terminate()
            code = worker.wait(timeout=20)
            stderr.close()
        log = (tmp_path / "worker.err").read_text().splitlines()
        assert code == 0, log
        entries = [json.loads(line) for line in log if line.strip()]  # every line is a JSON object
        assert entries and all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)


def test_a_worker_whose_port_is_taken_stops_saying_so(make_settings, redis_url):
    settings = make_settings(worker={"mode": "external"}, redis_url=redis_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {key: value for key, value in os.environ.items() if not key.startswith("CAREDESK_")}
        env.update(settings_environment(settings))
        env.update({"CAREDESK_WORKER__MODE": "auto", "CAREDESK_WORKER__HTTP_PORT": str(taken.getsockname()[1]),
                    "CAREDESK_WORKER__HTTP_HOST": "127.0.0.1"})
        result = subprocess.run([sys.executable, "-c", "from helpdesk.cli import app; app()", "worker"], env=env,
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "CAREDESK_WORKER__HTTP_PORT" in result.stderr and "worker running" not in result.stdout

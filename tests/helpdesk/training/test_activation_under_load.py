"""Switching models while hundreds of /model/parse requests are in flight, on a deployment of two
server processes sharing one database and model store: no request fails, every answer names the
model that produced it, and once the switch is done both processes answer with the new model."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from helpdesk.channels.ledger import make_database_engine
from helpdesk.nlu_admin.store import DatabaseModelStore
from nlu import ModelStore
from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # two live servers under parse load while a model is switched

#: read as report_defect with ~0.96 confidence: the strict copy falls back on it
PROBE = "máy giặt kêu to quá"


def add_strict_copy(store: ModelStore, version: str) -> str:
    """Store a second version: the same weights with a fallback threshold of 1.0, so each answer
    shows which of the two produced it (the strict one says nlu_fallback to PROBE)."""
    source = store.model_path(version)
    strict = f"{version}-strict"
    target = store.root / strict
    shutil.copytree(source, target)
    metadata_path = target / "metadata.json"
    metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    metadata["version"] = strict
    metadata["created_at"] = datetime.now(UTC).isoformat()
    for component in metadata["components"]:
        if component["name"] == "FallbackClassifier":
            component["config"]["threshold"] = 1.0  # the model is 0.999+ sure of PROBE
    metadata_path.write_text(json.dumps(metadata), encoding="utf-8")
    return strict


def expected_intent(version: str, old: str) -> str:
    return "report_defect" if version == old else "nlu_fallback"


async def test_activation_under_concurrent_parse_load_fails_no_request(training_settings, models_dir: Path):
    store = ModelStore(models_dir)  # an older install's models directory, imported by the servers
    old = store.active_version()
    new = add_strict_copy(store, old)
    settings = training_settings()
    answers: list[tuple[int, float, float, int, str, str]] = []  # (server, start, end, status, version, intent)

    with LiveServer(settings) as first, LiveServer(settings) as second:
        servers = [first.url, second.url]
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            token = (await http.post(f"{first.url}/api/auth/token",
                                     json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).json()["access_token"]
            stop = asyncio.Event()

            async def one(index: int) -> None:
                server = index % 2
                started = time.monotonic()
                try:
                    response = await http.post(f"{servers[server]}/model/parse", json={"text": PROBE})
                    body = response.json() if response.status_code == 200 else {}
                    status = response.status_code
                except httpx.HTTPError as exc:
                    body, status = {"error": repr(exc)}, 0
                answers.append((server, started, time.monotonic(), status, body.get("model_version", ""),
                                (body.get("intent") or {}).get("name", "")))

            async def load(worker: int) -> None:
                index = worker
                while not stop.is_set():
                    await one(index)
                    index += 32

            workers = [asyncio.create_task(load(n)) for n in range(32)]  # 32 requests in flight at all times
            while len(answers) < 150:
                await asyncio.sleep(0.01)
            switch_started = time.monotonic()
            activated = await http.post(f"{first.url}/api/nlu/models/{new}/activate",
                                        headers={"Authorization": f"Bearer {token}"})
            switched = time.monotonic()
            # Keep the load on until the other process has followed, and a while after.
            deadline = switched + 10
            while not any(a[0] == 1 and a[4] == new for a in answers) and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            after_both = len(answers)
            while len(answers) < after_both + 150:
                await asyncio.sleep(0.01)
            stop.set()
            await asyncio.gather(*workers)

    assert activated.status_code == 200, activated.text
    assert activated.json() == {"version": new, "previous": old}
    failures = [a for a in answers if a[3] != 200]
    assert not failures, failures[:5]
    assert len(answers) >= 300
    during = [a for a in answers if a[2] >= switch_started and a[1] <= switched]
    assert during, "no request was in flight while switching"
    assert {a[4] for a in answers} == {old, new}
    # Each answer names the model that produced it (the two read the probe differently).
    wrong = [a for a in answers if a[5] != expected_intent(a[4], old)]
    assert not wrong, wrong[:5]
    # The process that activated answers with the new model from the moment the switch returned.
    assert all(a[4] == new for a in answers if a[0] == 0 and a[1] >= switched)
    # The other process follows within seconds, and never goes back: a request sent after it first
    # answered with the new model is answered with the new model.
    followed = min(a[2] for a in answers if a[0] == 1 and a[4] == new)
    assert followed - switched < 5
    assert all(a[4] == new for a in answers if a[0] == 1 and a[1] > followed)
    database = make_database_engine(settings.database_url)
    assert DatabaseModelStore(database, models_dir).active_version() == new
    database.dispose()

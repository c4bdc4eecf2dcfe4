"""NLU models in the database: an older install's models directory is imported, the first model is
trained once however many processes ask, a corrupt artefact is refused while the old model keeps
answering, and an activation on one replica reaches another (own cache, same database) within 2 s
with no failed parse."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from bot import ConversationEngine, Knowledge, Responses
from bot.state import MemoryStateStore
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.config import Settings
from helpdesk.core.db import migrate
from helpdesk.core.errors import Conflict
from helpdesk.core.events import EventBus
from helpdesk.nlu_admin.bootstrap import ensure_active_model
from helpdesk.nlu_admin.models import NluModel
from helpdesk.nlu_admin.service import ModelHolder
from helpdesk.nlu_admin.store import DatabaseModelStore
from helpdesk.training.jobs import TrainingLoop
from helpdesk.training.service import CLI_ACTOR
from nlu import ModelLoadError, ModelStore
from tests.conftest import ROOT

#: read as report_defect with ~0.96 confidence: the strict copy falls back on it
PROBE = "máy giặt kêu to quá"
TINY_NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - xin chào
    - chào shop
    - hello
    - hi there
- intent: thank
  examples: |
    - cảm ơn
    - cám ơn shop
    - thanks
    - thank you
"""


def migrated(url: str) -> Engine:
    engine = make_database_engine(url)
    migrate(engine)
    return engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database, on SQLite and on the real PostgreSQL."""
    engine = migrated(database_url)
    yield engine
    engine.dispose()


def file_store_copy(trained_models_dir: Path, target: Path) -> ModelStore:
    """A private copy of the session's trained file store (what an older install left on disk)."""
    shutil.copytree(trained_models_dir, target, ignore=shutil.ignore_patterns(".*"))
    return ModelStore(target)


def strict_copy(source: Path, target_root: Path, version: str) -> Path:
    """The same weights with a fallback threshold of 1.0, as a new version: it reads PROBE as
    nlu_fallback where the original says report_defect, so each answer shows which model gave it."""
    target = target_root / version
    shutil.copytree(source, target)
    metadata = json.loads((target / "metadata.json").read_text(encoding="utf-8"))
    metadata["version"] = version
    metadata["created_at"] = datetime.now(UTC).isoformat()
    for component in metadata["components"]:
        if component["name"] == "FallbackClassifier":
            component["config"]["threshold"] = 1.0  # the active model is 0.999+ sure of PROBE
    (target / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")
    return target


def stored_versions(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(NluModel)).scalar_one()


def tiny_settings(tmp_path: Path, database_url: str, models_dir: Path) -> Settings:
    """Settings whose shipped NLU data is two intents (trains in a fraction of a second)."""
    data = tmp_path / "data"
    if not data.exists():
        (data / "nlu").mkdir(parents=True)
        (data / "nlu" / "tiny.yml").write_text(TINY_NLU, encoding="utf-8")
    return Settings(_env_file=None, environment="test", database_url=database_url, data_dir=data,
                    nlu={"models_dir": models_dir})


# -- an older install's models directory ----------------------------------------------------------


def test_a_file_store_is_imported_once_with_the_same_version_active(engine, tmp_path, trained_models_dir):
    files = file_store_copy(trained_models_dir, tmp_path / "models")
    active = files.active_version()
    older = strict_copy(files.model_path(active), files.root, "20200101-000000-older")
    assert {info.version for info in files.versions()} == {active, older.name}
    store = DatabaseModelStore(engine, tmp_path / "models")

    assert store.adopt_file_store() == active
    assert store.adopt_file_store() == active  # again: nothing more
    assert ModelHolder(DatabaseModelStore(engine, tmp_path / "other-host")).load_active()  # another cache

    assert stored_versions(engine) == 2
    assert store.active_version() == active
    assert {info.version: info.active for info in store.versions()} == {active: True, older.name: False}
    assert store.load(active).parse(PROBE).intent.name == "report_defect"
    assert store.load(older.name).parse(PROBE).intent.name == "nlu_fallback"


def test_a_database_with_a_model_ignores_the_models_directory(engine, tmp_path, trained_models_dir):
    files = file_store_copy(trained_models_dir, tmp_path / "files")
    store = DatabaseModelStore(engine, tmp_path / "cache")
    mine = store.add(strict_copy(files.model_path(files.active_version()), tmp_path, "20300101-000000-mine"),
                     activate=True)

    assert DatabaseModelStore(engine, tmp_path / "files").adopt_file_store() == mine
    assert stored_versions(engine) == 1


# -- the first model, trained once ---------------------------------------------------------------------


def test_processes_booting_at_once_train_the_first_model_once(database_url, tmp_path):
    engines = [migrated(database_url) for _ in range(3)]
    # each "process" has its own engine and cache directory, as replicas on other hosts would
    settings = [tiny_settings(tmp_path, database_url, tmp_path / f"host-{index}") for index in range(len(engines))]
    start = threading.Barrier(len(engines), timeout=30)
    results: dict[int, str | None] = {}
    errors: list[BaseException] = []

    def boot(index: int) -> None:
        try:
            start.wait()
            results[index] = ensure_active_model(engines[index], settings[index])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=boot, args=(index,)) for index in range(len(engines))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert not errors, errors
    assert len(set(results.values())) == 1 and None not in results.values()
    assert stored_versions(engines[0]) == 1
    store = DatabaseModelStore(engines[0], tmp_path / "host-0")
    assert store.active_version() == results[0]
    assert store.load_active().parse("cảm ơn shop nhiều").intent.name == "thank"
    for engine in engines:
        engine.dispose()


def test_the_first_boot_imports_an_older_install_instead_of_training(engine, tmp_path, trained_models_dir):
    files = file_store_copy(trained_models_dir, tmp_path / "models")
    settings = tiny_settings(tmp_path, engine.url.render_as_string(hide_password=False), tmp_path / "models")

    assert ensure_active_model(engine, settings) == files.active_version()
    assert ensure_active_model(engine, settings) == files.active_version()
    assert stored_versions(engine) == 1


def test_with_a_rasa_server_the_first_boot_does_nothing(engine, tmp_path):
    settings = tiny_settings(tmp_path, engine.url.render_as_string(hide_password=False), tmp_path / "models")
    settings.nlu.rasa_url = "http://127.0.0.1:5005"

    assert ensure_active_model(engine, settings) is None
    assert stored_versions(engine) == 0


# -- a corrupt artefact -------------------------------------------------------------------------------------


def test_a_corrupt_artefact_is_refused_and_the_old_model_keeps_answering(engine, tmp_path, trained_models_dir):
    files = file_store_copy(trained_models_dir, tmp_path / "files")
    old = DatabaseModelStore(engine, files.root).adopt_file_store()
    store = DatabaseModelStore(engine, tmp_path / "cache")
    holder = ModelHolder(store)
    assert holder.load_active()
    broken = store.add(strict_copy(files.model_path(old), tmp_path, "20300101-000000-broken"))
    with engine.begin() as connection:
        artefact = connection.execute(select(NluModel.artefact).where(NluModel.version == broken)).scalar_one()
        flipped = bytes(artefact[:-10]) + bytes(byte ^ 0xFF for byte in artefact[-10:])
        connection.execute(update(NluModel).where(NluModel.version == broken).values(artefact=flipped))

    with pytest.raises(ModelLoadError, match="corrupt"):
        holder.activate(broken)

    assert store.active_version() == old
    assert holder.version == old and holder.parse(PROBE).intent.name == "report_defect"
    assert not any(path.name.startswith(broken) for path in store.cache_root.iterdir())


async def test_a_replica_keeps_its_model_when_the_active_one_is_corrupt(engine, tmp_path, trained_models_dir):
    files = file_store_copy(trained_models_dir, tmp_path / "files")
    old = DatabaseModelStore(engine, files.root).adopt_file_store()
    store = DatabaseModelStore(engine, tmp_path / "cache")
    replica = replica_loop(engine, tmp_path / "replica", EventBus())
    await replica.start()
    try:
        broken = store.add(strict_copy(files.model_path(old), tmp_path, "20300101-000000-broken"))
        with engine.begin() as connection:
            connection.execute(update(NluModel).where(NluModel.version == broken).values(artefact=b"not a model"))
        store.activate(broken)  # behind every check: the pointer names a version whose bytes are bad

        with pytest.raises(ModelLoadError, match="corrupt"):
            await replica.reloads.follow_active_model()
        assert not await replica.reloads.follow_active_model()  # not read again every second
        assert replica.models.version == old
        assert (await replica.models.aparse(PROBE)).intent.name == "report_defect"
    finally:
        await replica.stop()


# -- replicas follow an activation ----------------------------------------------------------------------------


def replica_loop(engine: Engine, cache: Path, events: EventBus) -> TrainingLoop:
    """One "replica": its own engine use, cache directory, model holder, bot and training loop."""
    models = ModelHolder(DatabaseModelStore(engine, cache))
    assert models.load_active()
    bot = ConversationEngine(parser=models, responses=Responses.load(ROOT / "data" / "bot" / "responses.yml"),
                             knowledge=Knowledge.load(ROOT / "data" / "faq"), state_store=MemoryStateStore())
    return TrainingLoop(engine, events, models, bot, ROOT / "data", use_processes=False, follow_interval_s=1.0)


@pytest.mark.parametrize("shared_events", [True, False], ids=["redis-events", "polling-only"])
async def test_an_activation_on_one_replica_reaches_the_other_within_2_s(
        shared_events, postgres_url, redis_url, tmp_path, trained_models_dir, capsys):
    import redis.asyncio as aioredis

    files = file_store_copy(trained_models_dir, tmp_path / "files")
    setup = migrated(postgres_url)
    store = DatabaseModelStore(setup, tmp_path / "files")
    old = store.adopt_file_store()
    new = store.add(strict_copy(files.model_path(old), tmp_path, "20300101-000000-strict"))
    engines = [migrated(postgres_url), migrated(postgres_url)]
    clients = [aioredis.from_url(redis_url, decode_responses=True) for _ in engines]
    # polling-only: each replica's events stay in its process, so only the once-a-second look at
    # the active pointer can tell the other one
    buses = [EventBus(client if shared_events else None) for client in clients]
    replicas = [replica_loop(engine, tmp_path / f"cache-{index}", bus)
                for index, (engine, bus) in enumerate(zip(engines, buses))]
    answers: list[tuple[int, float, str, str]] = []  # (replica, answered at, version, intent)
    failures: list[tuple[int, BaseException]] = []
    stop = asyncio.Event()

    async def parse_continuously(index: int) -> None:
        while not stop.is_set():
            try:
                result = await replicas[index].models.aparse(PROBE)
                answers.append((index, time.monotonic(), result.model_version, result.intent.name))
            except Exception as exc:  # noqa: BLE001 - every failure is a finding
                failures.append((index, exc))
            await asyncio.sleep(0.002)

    for bus, replica in zip(buses, replicas):
        await bus.start()
        await replica.start()
    parsers = [asyncio.create_task(parse_continuously(index)) for index in (0, 1)]
    try:
        await asyncio.sleep(1.2)
        assert {version for _, _, version, _ in answers} == {old}
        assert await replicas[0].activate(CLI_ACTOR, new) == (new, old)
        switched = time.monotonic()
        while not any(index == 1 and version == new for index, _, version, _ in answers):
            assert time.monotonic() - switched < 5, "the other replica did not follow"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    finally:
        stop.set()
        await asyncio.gather(*parsers)
        for bus, replica in zip(buses, replicas):
            await replica.stop()
            await bus.stop()
        for client in clients:
            await client.aclose()
        for engine in (*engines, setup):
            engine.dispose()

    assert not failures, failures[:3]
    followed = min(at for index, at, version, _ in answers if index == 1 and version == new)
    with capsys.disabled():
        print(f"\n  activation reached the other replica in {(followed - switched) * 1000:.0f} ms "
              f"({'Redis event' if shared_events else 'polling only'}; {len(answers)} parses, none failed)")
    assert followed - switched < 2.0
    # every answer came from the model it names, and no replica went back to the old one
    assert all(intent == ("report_defect" if version == old else "nlu_fallback")
               for _, _, version, intent in answers)
    for index in (0, 1):
        first_new = min(at for i, at, version, _ in answers if i == index and version == new)
        assert all(version == new for i, at, version, _ in answers if i == index and at > first_new)


# -- the local cache -----------------------------------------------------------------------------------------


def test_the_cache_keeps_stored_versions_and_drops_old_leftovers(engine, tmp_path, trained_models_dir):
    import os

    files = file_store_copy(trained_models_dir, tmp_path / "files")
    store = DatabaseModelStore(engine, tmp_path / "cache")
    DatabaseModelStore(engine, files.root).adopt_file_store()
    kept = store.model_path(files.active_version())
    discarded = store.model_path(store.add(strict_copy(kept, tmp_path, "20300101-000000-gone")))
    store.remove("20300101-000000-gone")
    discarded.mkdir()  # as another process on this host would have left it
    recent_leftover = store.cache_root / "20300101-000000-other-0123456789abcdef"
    dead_unpack = store.cache_root / ".20300101-000000-x-dead"
    dead_training = store.training_root / "job-7-dead"
    for path in (recent_leftover, dead_unpack, dead_training):
        path.mkdir(parents=True)
    an_old_time = time.time() - 2 * 24 * 3600
    for path in (kept, discarded, dead_unpack, dead_training):
        os.utime(path, (an_old_time, an_old_time))

    assert sorted(store.prune_cache()) == sorted([discarded.name, dead_unpack.name, dead_training.name])
    assert kept.is_dir() and recent_leftover.is_dir()
    assert store.load(files.active_version()).version == files.active_version()

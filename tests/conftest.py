"""Shared fixtures: a trained model, databases (SQLite and the real PostgreSQL), Redis, the app."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.fakes.telegram_api import FakeTelegramAPI

ROOT = Path(__file__).resolve().parents[1]
ADMIN_EMAIL = "admin@test.local"
ADMIN_PASSWORD = "admin-pass-123"
TELEGRAM_SECRET = "tg-webhook-secret"
#: a test fails when an event loop of CareDesk stalled at least this long while it ran, its own thread
#: seen running something (see LoopStalls): synchronous work on the loop holds up every request of the
#: process. Generous for a loaded 2-core CI machine; the login tests hold the loop to 250 ms themselves,
#: and shorter stalls are still logged.
LOOP_STALL_LIMIT_MS = float(os.environ.get("CAREDESK_TEST_LOOP_STALL_MS", "1000"))


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of this suite; under pytest-xdist, give this worker servers of its own."""
    config.addinivalue_line("markers", "loop_may_block: the test blocks an event loop on purpose (the "
                                       "loop-stall check does not fail it)")
    config.addinivalue_line("markers", "real_password_hashing: the test hashes passwords at CareDesk's real "
                                       "cost (the others use the cheapest argon2id)")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker != "gw0":
        _own_databases(int(worker[2:]))


def _own_databases(worker: int) -> None:
    """Point a parallel test worker (``pytest -n``, gw1 and up) at a PostgreSQL database and a Redis
    database of its own, so that one worker's reset never empties another's in the middle of a test
    (worker gw0 keeps the configured ones)."""
    from sqlalchemy.engine import make_url

    postgres = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if postgres:
        url = make_url(postgres)
        name = f"{url.database}_gw{worker}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            exists = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name})
            if exists.first() is None:
                connection.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
        admin.dispose()
        os.environ["CAREDESK_TEST_POSTGRES_URL"] = url.set(database=name).render_as_string(hide_password=False)
    redis_url = os.environ.get("CAREDESK_TEST_REDIS_URL")
    if redis_url:
        import redis

        base, _, db = redis_url.rpartition("/")
        client = redis.Redis.from_url(redis_url)
        databases = int(client.config_get("databases")["databases"])
        client.close()
        # scripts/test-services.sh starts Redis with 64 databases: workers take 16 apart from the
        # configured one; a server with fewer gets the ones below it
        index = int(db) + 16 * worker if int(db) + 16 * worker < databases else (int(db) - worker) % databases
        os.environ["CAREDESK_TEST_REDIS_URL"] = f"{base}/{index}"


class LoopStalls(logging.Handler):
    """Collects the stalls that ``helpdesk.core.looplag`` logs, from whichever loop (in-process app or
    live server thread) they happened on."""

    def __init__(self, limit_ms: float):
        super().__init__(logging.WARNING)
        self.limit_ms = limit_ms
        self.stalls: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        """Keep the stall if it reached the limit without the garbage collector's share.

        A full collection of the test process's large heap (trained models, many apps) pauses every
        thread for up to half a second; `caredesk serve` freezes its start-up objects out of it (see
        Wiring.start). It says nothing about the code under test, so it does not count here.
        """
        lag_ms = getattr(record, "lag_ms", None)
        if lag_ms is None or lag_ms - getattr(record, "gc_ms", 0) < self.limit_ms:
            return
        # Only a stall during which the loop's own thread was seen running something counts: when a
        # thread holds the GIL in C code (a model being fitted, a test building data) the loop and the
        # watchdog's sampler both wait and nothing is seen. Blocking calls on the loop release the GIL
        # (a password hash, SQLite waiting for a lock, a sleep), so the sampler sees where it is stuck.
        stuck_in = getattr(record, "stuck_in", None)
        if stuck_in and not _idle(stuck_in):
            self.stalls.append(lag_ms)


#: innermost frames in which a loop's thread runs asyncio's own bookkeeping, no callback of anyone's:
#: a stall sampled there is the thread kept off the CPU (the GIL held elsewhere, a loaded machine)
_LOOP_OWN_FRAMES = ("in run_until_complete", "in run_forever", "in _run_once")


def _idle(stack: str) -> bool:
    """Whether a stack shows an event loop waiting for work (in its selector) or between callbacks,
    not blocked by one."""
    innermost = stack.strip().splitlines()[-2:]
    if any("selectors.py" in line or ".select(" in line for line in innermost):
        return True
    frame = innermost[0] if innermost else ""
    if "asyncio" in frame and "base_events.py" in frame and frame.endswith(_LOOP_OWN_FRAMES):
        return True
    # uvloop (uvicorn's loop) runs in C: a thread in it shows its caller's line as its innermost
    # frame, whether it waits in epoll or cannot get the GIL back from a thread holding it in C code
    code = innermost[-1].strip() if innermost else ""
    if code.endswith((".run_until_complete(task)", ".run_forever()")) or "run_until_complete(" in code:
        return True
    return _starting_a_thread(stack)


def _starting_a_thread(stack: str) -> bool:
    """Whether a stack ends in ``Thread.start`` waiting for the new thread to run (a worker thread of
    ``to_thread`` or an executor, started on the loop): that takes microseconds unless the new thread
    cannot get a processor or the GIL (a loaded machine, another thread in C code); no code of anyone's
    runs on the loop meanwhile."""
    lines = stack.strip().splitlines()
    frames = [line.strip() for line in lines if line.strip().startswith("File ")]
    for index, frame in enumerate(frames):
        if 'threading.py"' in frame and frame.endswith(", in start"):
            return all('threading.py"' in later for later in frames[index:])
    return False


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings read from the environment (``get_settings``, cached for a process) are read anew
    after a test that changed the environment."""
    from helpdesk.core.config import get_settings

    yield
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def event_loop_never_stalls(request: pytest.FixtureRequest) -> Iterator[LoopStalls]:
    """Fail any test during which a CareDesk event loop was blocked (see LOOP_STALL_LIMIT_MS)."""
    watched = logging.getLogger("helpdesk.core.looplag")
    handler = LoopStalls(LOOP_STALL_LIMIT_MS)
    watched.addHandler(handler)
    try:
        yield handler
    finally:
        watched.removeHandler(handler)
    if handler.stalls and request.node.get_closest_marker("loop_may_block") is None:
        pytest.fail(f"the event loop was blocked for {max(handler.stalls)} ms during this test "
                    f"({len(handler.stalls)} stalls of {LOOP_STALL_LIMIT_MS:.0f} ms or more): something "
                    "synchronous (database, hashing, file I/O) ran on it instead of in a thread",
                    pytrace=False)


def _service_url(name: str) -> str | None:
    return os.environ.get(name) or None


def require_service(name: str) -> str:
    """The URL of a real test server started by `make test`; skip with the reason when absent."""
    url = _service_url(name)
    if url is None and os.environ.get("CI"):
        pytest.fail(f"{name} is not set in CI: .ci/run must run `make test`, which starts the real server")
    if url is None:
        pytest.skip(f"{name} is not set: run the suite with `make test`, which starts the real server")
    return url


@pytest.fixture(scope="session")
def trained_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model store with one model trained on the shipped data and the demo shop's catalog, active."""
    from nlu import ModelStore
    from nlu.catalog import load_training_data_with_catalogs

    root = tmp_path_factory.mktemp("models")
    store = ModelStore(root)
    # as `caredesk prepare` trains: the demo shop's products become the product lookup table
    data = load_training_data_with_catalogs([ROOT / "data" / "nlu"], [ROOT / "data" / "demo" / "shop.yml"])
    version = store.train_and_add(data)
    store.activate(version)
    return root


def reset_postgres(url: str) -> None:
    """Drop everything in the test database's public schema."""
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture
def postgres_url() -> str:
    """The real PostgreSQL test database, emptied."""
    url = require_service("CAREDESK_TEST_POSTGRES_URL")
    reset_postgres(url)
    return url


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The real Redis test database, flushed before and after."""
    import redis

    url = require_service("CAREDESK_TEST_REDIS_URL")
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each storage test runs on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.db"
    return request.getfixturevalue("postgres_url")


def _quick_password_hash():
    """Argon2id in CareDesk's stored format at the lowest cost the library allows: a login verifies
    in well under a millisecond instead of about 70 ms (hundreds of logins and new accounts run in the
    suite). Hashes keep their parameters, so each is verified at the cost it was made with."""
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1),))


QUICK_PASSWORD_HASH = _quick_password_hash()


@pytest.fixture(autouse=True)
def quick_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap password hashes in this process, except for tests marked ``real_password_hashing`` (those
    that measure what real hashing does to the server)."""
    if request.node.get_closest_marker("real_password_hashing") is None:
        monkeypatch.setattr("helpdesk.core.security._password_hash", QUICK_PASSWORD_HASH)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite database with the test admin, copied for each test (migrating and hashing
    a password per test would cost most of a second)."""
    from sqlmodel import Session

    from helpdesk.agents.service import ensure_admin
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate

    path = tmp_path_factory.mktemp("template") / "caredesk.db"
    engine = make_database_engine(f"sqlite:///{path}")
    migrate(engine)
    with pytest.MonkeyPatch.context() as patch, Session(engine) as session:
        patch.setattr("helpdesk.core.security._password_hash", QUICK_PASSWORD_HASH)
        ensure_admin(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD)
        session.commit()
    engine.dispose()  # closing the last connection checkpoints the WAL into the main file
    return path


@pytest.fixture
def sqlite_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite database file of this test's own."""
    import shutil

    from helpdesk.channels.ledger import inbound_database_path

    url = f"sqlite:///{tmp_path}/caredesk.db"
    shutil.copyfile(sqlite_template, tmp_path / "caredesk.db")
    shutil.copyfile(inbound_database_path(f"sqlite:///{sqlite_template}"), inbound_database_path(url))
    if request.node.get_closest_marker("real_password_hashing") is not None:
        from helpdesk.core.security import hash_password

        engine = create_engine(url)
        with engine.begin() as connection:
            connection.execute(text("UPDATE agents SET password_hash = :hash WHERE email = :email"),
                               {"hash": hash_password(ADMIN_PASSWORD), "email": ADMIN_EMAIL})
        engine.dispose()
    return url


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegramAPI]:
    """A loopback Telegram Bot API that records what CareDesk sends."""
    with FakeTelegramAPI(token="123456:TEST-TOKEN") as fake:
        yield fake


@pytest.fixture
def make_settings(sqlite_url: str, trained_models_dir: Path) -> Callable[..., object]:
    """Settings for a test app: its own database, the trained model, no .env file."""
    from helpdesk.core.config import Settings

    def make(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "environment": "test",
            "database_url": sqlite_url,
            "nlu": {"models_dir": trained_models_dir},
            "admin": {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture
def telegram_settings(make_settings: Callable[..., object], fake_telegram: FakeTelegramAPI):
    """Settings with the Telegram channel pointed at the fake Bot API."""
    return make_settings(telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                   "api_base": fake_telegram.base_url})


class CareDeskClient(httpx.AsyncClient):
    """An HTTP client bound to a running test app, with helpers to log in and wait for background work."""

    app: object

    @property
    def wiring(self):
        """The app's wiring (database engine, worker, connectors)."""
        return self.app.state.wiring

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until the background worker has processed and delivered everything submitted."""
        await self.wiring.worker.wait_idle(timeout)

    async def login(self, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> dict[str, str]:
        """Authorization headers for the account."""
        response = await self.post("/api/auth/token", json={"email": email, "password": password})
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def start_client(settings) -> AsyncIterator[CareDeskClient]:
    """Run the app's lifespan and yield a client talking to it in-process."""
    from helpdesk.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with CareDeskClient(transport=httpx.ASGITransport(app=app), base_url="http://caredesk.test") as client:
            client.app = app
            yield client


@pytest.fixture
async def client(make_settings) -> AsyncIterator[CareDeskClient]:
    """The app on the embedded default (SQLite, no Redis), cli channel on, no platform channels."""
    async for value in start_client(make_settings()):
        yield value


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_client(request: pytest.FixtureRequest, make_settings) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite, then on the real PostgreSQL: for what must hold on both databases."""
    if request.param == "sqlite":
        settings = make_settings()
    else:
        settings = make_settings(database_url=request.getfixturevalue("postgres_url"))
    async for value in start_client(settings):
        yield value


@pytest.fixture
async def telegram_client(telegram_settings) -> AsyncIterator[CareDeskClient]:
    """The app with Telegram pointed at the fake Bot API."""
    async for value in start_client(telegram_settings):
        yield value


class LiveServer:
    """The app served by uvicorn on a loopback port in a background thread (for subprocess clients)."""

    def __init__(self, settings):
        import socket

        from helpdesk.app import create_app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "LiveServer":
        import threading
        import time

        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def live_server(make_settings) -> Iterator[LiveServer]:
    """CareDesk on a real port (embedded default: SQLite, no Redis, cli channel on)."""
    with LiveServer(make_settings()) as server:
        yield server

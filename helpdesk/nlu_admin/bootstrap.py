"""First boot: making sure a deployment has an active NLU model, trained once however many processes
ask at the same moment (``caredesk prepare``, and ``caredesk migrate`` run by several replicas)."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine

from helpdesk.core.config import Settings
from helpdesk.nlu_admin.store import DatabaseModelStore
from nlu import load_training_data

log = logging.getLogger(__name__)

#: the PostgreSQL advisory lock key held while the first model is imported or trained (any fixed
#: 64-bit number no other part of CareDesk uses: here the bytes of "nlu-boot")
BOOTSTRAP_LOCK_KEY = int.from_bytes(b"nlu-boot", "big") & 0x7FFF_FFFF_FFFF_FFFF
#: on an in-memory SQLite database (tests, scripts) only this process can race
_memory_lock = threading.Lock()


@contextlib.contextmanager
def bootstrap_lock(engine: Engine) -> Iterator[None]:
    """Held by one process (and one thread) at a time across the deployment.

    PostgreSQL: a transaction-level advisory lock on a connection of its own, released when that
    transaction ends, whatever happens to this process. SQLite: an exclusive ``flock`` on a file
    beside the database file (a SQLite deployment lives on one host); a write transaction would
    not do, as it would lock out the very inserts done under it.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection, connection.begin():
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": BOOTSTRAP_LOCK_KEY})
            yield
        return
    database = engine.url.database
    if not database or database == ":memory:":
        with _memory_lock:
            yield
        return
    path = Path(database).with_name(Path(database).name + ".nlu-bootstrap.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def train_shipped_model(store: DatabaseModelStore, settings: Settings, *, activate: bool = True) -> str:
    """Train a model on the shipped training data (``settings.data_dir / "nlu"``) and store it."""
    started = time.perf_counter()
    version = store.train_and_add(load_training_data([settings.data_dir / "nlu"]), activate=activate)
    log.info("NLU model %s trained on the shipped data in %.1f s%s", version, time.perf_counter() - started,
             " and activated" if activate else "")
    return version


def ensure_active_model(engine: Engine, settings: Settings) -> str | None:
    """The active model's version, after making sure there is one: an older install's models
    directory is imported (``DatabaseModelStore.adopt_file_store``); otherwise the shipped data is
    trained and the model activated. Under ``bootstrap_lock``, so that processes calling this at the
    same moment train once: the others wait, then find the model. Does nothing (None) when parsing
    goes to a Rasa server (``settings.nlu.rasa_url``). Synchronous: run it in a thread from async code.
    """
    if settings.nlu.rasa_url:
        return None
    store = DatabaseModelStore(engine, settings.nlu.models_dir)
    active = store.active_version()
    if active is not None:
        return active
    with bootstrap_lock(engine):
        active = store.active_version() or store.adopt_file_store()
        if active is not None:
            return active
        return train_shipped_model(store, settings)

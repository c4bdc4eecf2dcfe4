"""First boot: making sure a deployment has an active NLU model, trained once however many processes
ask at the same moment (``caredesk prepare``, and ``caredesk migrate`` run by several replicas)."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from sqlalchemy.engine import Engine

from helpdesk.core.config import Settings
from helpdesk.core.db import exclusive
from helpdesk.nlu_admin.store import DatabaseModelStore
from helpdesk.shop.catalog import with_catalog
from nlu import load_training_data

log = logging.getLogger(__name__)

#: on an in-memory SQLite database (tests, scripts) only this process can race
_memory_lock = threading.Lock()


@contextlib.contextmanager
def bootstrap_lock(engine: Engine) -> Iterator[None]:
    """Held by one process (and one thread) at a time across the deployment: ``core.db.exclusive``
    (a PostgreSQL advisory lock, or a lock file beside a SQLite file), or a lock of this process for
    an in-memory database."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and (not database or database == ":memory:"):
        with _memory_lock:
            yield
        return
    with exclusive(engine, "caredesk:nlu-bootstrap"):
        yield


def train_shipped_model(store: DatabaseModelStore, settings: Settings, *, activate: bool = True) -> str:
    """Train a model on the shipped training data (``settings.data_dir / "nlu"``) and the shop's
    catalog (its product names as a lookup table), and store it."""
    started = time.perf_counter()
    data = with_catalog(load_training_data([settings.data_dir / "nlu"]), store.engine)
    version = store.train_and_add(data, activate=activate)
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

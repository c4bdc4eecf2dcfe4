"""The PostgreSQL connection pool: a connection the server closed while it sat in the pool is never
handed out (no ping per checkout), and the pool's size comes from the settings."""

from __future__ import annotations

import time

from sqlalchemy import text

from helpdesk.core.config import Settings
from helpdesk.core.db import make_engine


def _backend_pid(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_connection_the_server_terminated_in_the_pool_is_replaced_not_handed_out(postgres_url: str):
    engine = make_engine(postgres_url, pool_size=1, max_overflow=0)
    admin = make_engine(postgres_url, pool_size=1, max_overflow=0)
    try:
        first = _backend_pid(engine)
        assert _backend_pid(engine) == first, "a returned connection is reused, not reopened"
        # autocommit: pg_stat_activity is read afresh by each statement, not once per transaction
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first}).scalar_one()
            # pg_terminate_backend only signals: wait until the backend has gone (closed its socket)
            deadline = time.monotonic() + 10
            while connection.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"),
                                     {"pid": first}).scalar_one():
                assert time.monotonic() < deadline, "the terminated backend did not exit"
                time.sleep(0.01)
        # the pooled connection's server is gone: the next statement must run on a new one, not fail
        second = _backend_pid(engine)
        assert second != first
        assert _backend_pid(engine) == second
    finally:
        engine.dispose()
        admin.dispose()


def test_the_pool_size_is_read_from_the_settings(monkeypatch):
    monkeypatch.setenv("CAREDESK_DATABASE_POOL_SIZE", "7")
    monkeypatch.setenv("CAREDESK_DATABASE_MAX_OVERFLOW", "3")
    settings = Settings()
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none", pool_size=settings.database_pool_size,
                         max_overflow=settings.database_max_overflow)
    assert (engine.pool.size(), engine.pool._max_overflow) == (7, 3)
    monkeypatch.setenv("CAREDESK_DATABASE_POOL_SIZE", "0")
    try:
        Settings()
    except ValueError as error:
        assert "database_pool_size" in str(error)
    else:
        raise AssertionError("a pool of 0 connections was accepted")

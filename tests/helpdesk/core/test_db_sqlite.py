"""Opening a SQLite file that another connection is switching to WAL at the same moment."""

from __future__ import annotations

import sqlite3
import threading

from helpdesk.core.db import use_wal_journal


def test_switching_to_wal_waits_while_another_connection_has_the_file_alone(tmp_path):
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    # SQLite's own busy handler is not asked here (a 0.1 ms timeout): the switch is refused at once
    opener = sqlite3.connect(path, timeout=0.0001, isolation_level=None)
    try:
        try:
            opener.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
        else:
            raise AssertionError("the switch should be refused while the file is held")
        release = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
        release.start()
        use_wal_journal(opener.cursor(), "main", busy_timeout_ms=5000)
        release.join()
        assert opener.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        opener.close()
        holder.close()


def test_switching_to_wal_gives_up_after_the_busy_timeout(tmp_path):
    path = tmp_path / "held.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    opener = sqlite3.connect(path, timeout=0.0001, isolation_level=None)
    try:
        try:
            use_wal_journal(opener.cursor(), "main", busy_timeout_ms=100)
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
        else:
            raise AssertionError("a file held past the timeout should fail")
    finally:
        opener.close()
        holder.close()

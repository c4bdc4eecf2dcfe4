"""Right of way for the webhook edge on a shared SQLite file.

SQLite lets one connection write at a time. When the serving process acknowledges webhooks and its
child processes them, both write to the same file, and under load the child's back-to-back
transactions keep the lock almost all the time: an acknowledgement would queue behind them for
seconds. The gate gives the edge the right of way. The serving process counts, in a small shared
file, the stores that are waiting; the child looks at that count before the first write of each
transaction and, while it is not zero, holds back (for a bounded time, so a stuck count can only
slow it down, never stop it). A transaction that already writes is never held back, so the two
can not wait on each other.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

_COUNT = struct.Struct("=i")
WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
#: how long the child holds back a write at most, and how often it looks again
MAX_HOLD_S = 0.05
POLL_S = 0.0002


class EdgeGate:
    """The shared count of edge stores waiting for the SQLite write lock."""

    def __init__(self, path: Path, *, create: bool):
        self.path = path
        if create:
            path.write_bytes(b"\0" * _COUNT.size)
        self._file = open(path, "r+b")  # noqa: SIM115 - kept open for the mapping's lifetime
        self._map = mmap.mmap(self._file.fileno(), _COUNT.size)
        self._lock = threading.Lock()  # one process writes the count; its threads take turns

    @property
    def waiting(self) -> int:
        """How many edge stores wait right now."""
        return _COUNT.unpack_from(self._map, 0)[0]

    def _add(self, delta: int) -> None:
        with self._lock:
            _COUNT.pack_into(self._map, 0, max(0, self.waiting + delta))

    def __enter__(self) -> EdgeGate:
        self._add(1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._add(-1)

    def hold_back(self) -> None:
        """Wait while an edge store waits (at most MAX_HOLD_S)."""
        if not self.waiting:
            return
        deadline = time.monotonic() + MAX_HOLD_S
        while self.waiting and time.monotonic() < deadline:
            time.sleep(POLL_S)

    def install(self, engine: Engine) -> None:
        """Make ``engine``'s transactions yield to the edge before their first write."""

        @event.listens_for(engine, "before_cursor_execute")
        def before(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if connection.info.get("caredesk_writing"):
                return
            if statement.lstrip()[:7].upper().startswith(WRITES):
                self.hold_back()
                connection.info["caredesk_writing"] = True

        def ended(connection: Any) -> None:
            connection.info.pop("caredesk_writing", None)

        event.listen(engine, "commit", ended)
        event.listen(engine, "rollback", ended)

    def close(self) -> None:
        """Release the mapping."""
        self._map.close()
        self._file.close()

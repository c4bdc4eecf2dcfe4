"""Per-key locks: work on one key (a chat, a conversation) one at a time, other keys meanwhile."""

from __future__ import annotations

import asyncio
import weakref


class KeyedLocks:
    """One asyncio lock per key, forgotten when nobody holds a reference."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def get(self, key: str) -> asyncio.Lock:
        """The lock for ``key``."""
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        return lock

"""Where the bot keeps what it remembers about each conversation between turns.

A storage is a small key-value interface over JSON documents. The engine reads a conversation's
state at the start of a turn and writes it back at the end. Implementations: in memory (tests,
single process), Redis (when ``CAREDESK_REDIS_URL`` is set) and the database (the helpdesk's).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from copy import deepcopy
from typing import Any


class DialogueStateStore(ABC):
    """Loads and saves one JSON document per conversation key."""

    @abstractmethod
    async def load(self, key: str) -> dict[str, Any]:
        """The saved state for ``key``, or an empty dict."""

    @abstractmethod
    async def save(self, key: str, state: dict[str, Any]) -> None:
        """Replace the saved state for ``key``."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Forget the state for ``key``."""


class MemoryStateStore(DialogueStateStore):
    """State in a dict: lost on restart, for tests and one-off runs."""

    def __init__(self) -> None:
        self._data: dict[str, dict[str, Any]] = {}

    async def load(self, key: str) -> dict[str, Any]:
        return deepcopy(self._data.get(key, {}))

    async def save(self, key: str, state: dict[str, Any]) -> None:
        self._data[key] = deepcopy(state)

    async def delete(self, key: str) -> None:
        self._data.pop(key, None)


class RedisStateStore(DialogueStateStore):
    """State in Redis, shared by every worker and kept across restarts (expires when idle)."""

    def __init__(self, redis: Any, *, prefix: str = "caredesk:dialogue:", ttl_s: int = 30 * 24 * 3600):
        self._redis = redis
        self._prefix = prefix
        self._ttl_s = ttl_s

    async def load(self, key: str) -> dict[str, Any]:
        raw = await self._redis.get(self._prefix + key)
        return json.loads(raw) if raw else {}

    async def save(self, key: str, state: dict[str, Any]) -> None:
        await self._redis.set(self._prefix + key, json.dumps(state, ensure_ascii=False), ex=self._ttl_s)

    async def delete(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)

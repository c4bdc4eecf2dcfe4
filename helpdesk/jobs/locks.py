"""Per-key locks: work on one key (a chat, a conversation) one at a time, other keys meanwhile.

``KeyedLocks`` works inside one process; ``RedisKeyLocks`` across the processes sharing a Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import weakref
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from helpdesk.core.aio import cancel_and_wait

log = logging.getLogger(__name__)


#: What the job running in this context does when its key is taken and it must wait (for the key's
#: earlier job, in this process or another): set by whoever gave the job a place to run, so that it
#: can give the place back (``helpdesk.jobs.streams``: a chat held up keeps no other chat waiting).
on_key_wait: ContextVar[Callable[[], None] | None] = ContextVar("caredesk_on_key_wait", default=None)


def waiting_for_key() -> None:
    """Tell whoever gave this job its place that it waits for its key (``on_key_wait``)."""
    hook = on_key_wait.get()
    if hook is not None:
        hook()


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


#: the longest pause between two tries to take a busy lock
MAX_POLL_S = 0.25
#: deletes the lock only if this holder still has it (it may have expired and gone to another)
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
#: extends the lock only if this holder still has it
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


class RedisKeyLocks:
    """One lock per key shared by every process on the same Redis (worker replicas).

    A lock is a key set with NX and a time to live, renewed while its holder works, so a holder
    that was killed (SIGKILL, a lost machine) frees it within ``ttl_s``. Waiting is polling, with growing pauses: locks
    are short (one chat's turn) and rarely contended (two jobs of one chat on two workers)."""

    def __init__(self, redis: Any, *, ttl_s: float = 10.0, prefix: str = "caredesk:lock:",
                 poll_s: float = 0.02):
        self.redis = redis
        # EVALSHA of scripts Redis keeps (loaded again by redis-py after a Redis restart), rather than
        # the script's text with every release and renewal; registered at first use
        self._scripts: tuple[Any, Any] | None = None
        self.ttl_ms = int(ttl_s * 1000)
        self.prefix = prefix
        self.poll_s = poll_s

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold ``key``'s lock for the block; a Redis error while taking it is raised (the runner
        tries the job again), one while renewing or releasing is logged (the lock then expires)."""
        name = self.prefix + key
        token = secrets.token_hex(8)
        pause = self.poll_s
        told = False
        while not await self.redis.set(name, token, nx=True, px=self.ttl_ms):
            if not told:
                waiting_for_key()
                told = True
            # growing pauses: a backlog has many jobs waiting for a few busy chats, and each of them
            # asking every few milliseconds would keep Redis and the connection pool busy for nothing
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, MAX_POLL_S)
        released = asyncio.Event()
        renewer = asyncio.create_task(self._renew(name, token, released), name=f"caredesk-lock-renew:{key}")
        try:
            yield
        finally:
            # The flag, not the cancellation alone, ends the renewer: redis-py (8.1) can lose a
            # cancellation that arrives during a command, and the renewer then slept and renewed on,
            # while this block waited for it to end: the chat's lock held for good, its jobs queued.
            released.set()
            await cancel_and_wait(renewer)
            try:
                await self._script(0)(keys=[name], args=[token])
            except Exception as exc:
                log.warning("could not release the lock of %s (it expires by itself): %s", key, exc)

    def _script(self, which: int) -> Any:
        """The release (0) or renewal (1) script."""
        if self._scripts is None:
            self._scripts = (self.redis.register_script(_RELEASE), self.redis.register_script(_RENEW))
        return self._scripts[which]

    async def _renew(self, name: str, token: str, released: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            if released.is_set():
                return
            try:
                if not await self._script(1)(keys=[name], args=[token, self.ttl_ms]):
                    log.warning("the lock %s expired while held (another process may take it)", name)
                    return
            except Exception as exc:
                log.warning("could not renew the lock %s: %s", name, exc)

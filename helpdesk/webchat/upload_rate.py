"""How many files a web chat visitor may send in a window, counted across every process and replica
when Redis is configured (``CAREDESK_REDIS_URL``), else in this process.

Behind a load balancer a visitor's uploads reach any replica: a count kept in each process's memory
would let them send the limit times the number of processes. With Redis the count is a sorted set
per visitor (one entry per upload, scored by Redis's own clock, so the replicas' clocks need not
agree), trimmed and checked in one Lua script: two uploads at once on two replicas cannot both take
the last place. Should Redis be away, the process's own count decides meanwhile (an upload is not
refused for want of Redis, and a visitor is still bounded per process).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

from helpdesk.core.errors import is_infrastructure_error

log = logging.getLogger(__name__)

#: files a visitor may send per window (a person sends a few photos, not a stream)
UPLOAD_RATE = (10, 60.0)
#: visitors whose recent uploads a process remembers (the oldest are forgotten first)
UPLOAD_RATE_VISITORS = 10_000
KEY_PREFIX = "caredesk:webchat:uploads:"

# KEYS[1] the visitor's set; ARGV: count, window in ms, a unique member. Returns 1 (allowed) or 0.
_SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""


class RateLimit:
    """At most ``count`` events in any ``window_s`` seconds, in this process (a visitor socket's
    frames; a visitor's uploads when there is no Redis)."""

    def __init__(self, count: int, window_s: float):
        self._count, self._window_s = count, window_s
        self._times: deque[float] = deque()

    def allow(self) -> bool:
        now = time.monotonic()
        while self._times and now - self._times[0] > self._window_s:
            self._times.popleft()
        if len(self._times) >= self._count:
            return False
        self._times.append(now)
        return True


class UploadRate:
    """Per visitor, at most ``count`` uploads in any ``window_s`` seconds: shared through ``redis``
    (an asyncio client) when given, else counted in this process."""

    def __init__(self, redis: Any = None, count: int = UPLOAD_RATE[0], window_s: float = UPLOAD_RATE[1]):
        self.redis = redis
        self.count, self.window_s = count, window_s
        self._local: OrderedDict[str, RateLimit] = OrderedDict()
        self._script = redis.register_script(_SLIDING_WINDOW) if redis is not None else None

    async def allow(self, visitor_id: str) -> bool:
        """Count one upload of ``visitor_id``; False when they are over the limit (nothing counted)."""
        if self._script is not None:
            try:
                allowed = await self._script(keys=[KEY_PREFIX + visitor_id],
                                             args=[self.count, int(self.window_s * 1000), uuid.uuid4().hex])
                return bool(int(allowed))
            except Exception as exc:
                if not is_infrastructure_error(exc):
                    raise
                log.warning("upload rate: Redis is away, counting in this process meanwhile: %s", exc)
        return self._allow_here(visitor_id)

    def _allow_here(self, visitor_id: str) -> bool:
        window = self._local.pop(visitor_id, None) or RateLimit(self.count, self.window_s)
        self._local[visitor_id] = window
        while len(self._local) > UPLOAD_RATE_VISITORS:
            self._local.popitem(last=False)
        return window.allow()

"""Small asyncio helpers shared by the parts that run background tasks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from anyio import to_thread

T = TypeVar("T")


async def send_each_due(due_ids: Iterable[int], claim: Callable[[int], T | None],
                        send: Callable[[T], Awaitable[None]], what: str, log: logging.Logger) -> int:
    """Claim each due row in a worker thread (``claim`` commits its own transaction and returns what to
    send, or None when the row is not to go after all), then ``send`` it; how many were claimed.

    The care messages and the campaign messages go out this way. A claim that fails is logged and the
    row stays due for the next run: one broken row must not hold back the others. A send that fails is
    logged too; its row stays claimed, and the domain closes it as interrupted later, so it is never
    sent twice.
    """
    claimed = 0
    for row_id in due_ids:
        try:
            item = await to_thread.run_sync(claim, row_id)
        except Exception:
            log.exception("claiming %s %s failed", what, row_id)
            continue
        if item is None:
            continue
        claimed += 1
        try:
            await send(item)
        except Exception:
            log.exception("sending %s %s by %s failed", what, row_id, getattr(item, "channel", None))
    return claimed


#: how long ``cancel_and_wait`` waits for a cancelled task to end before cancelling it again
CANCEL_AGAIN_S = 0.5


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has finished (None: nothing to do)."""
    if task is None:
        return
    # Cancelled again until it ends: a library that swallows a cancellation (redis-py can lose one
    # that arrives during a command) would otherwise keep the task, and this wait, going for ever.
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=CANCEL_AGAIN_S)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def where_waiting(task: asyncio.Task) -> str:
    """The chain of coroutines a task is suspended in, outermost first, down to the innermost await
    (asyncio's own ``Task.get_stack`` gives only the outermost frame of a suspended task)."""
    lines = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "gi_frame", None) \
            or getattr(awaited, "ag_frame", None)
        if frame is not None:
            lines.append(f'  File "{frame.f_code.co_filename}", line {frame.f_lineno}, in {frame.f_code.co_name}')
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "gi_yieldfrom", None) \
            or getattr(awaited, "ag_await", None)
    return "\n".join(lines)


def log_tasks(logger, limit: int = 500) -> None:
    """Log where every task of the running loop is waiting (``kill -USR1`` a worker to see what a
    process that does nothing is waiting for)."""

    tasks = asyncio.all_tasks()
    logger.warning("%d asyncio tasks", len(tasks))
    for task in list(tasks)[:limit]:
        logger.warning("task %s:\n%s", task.get_name(), where_waiting(task))


#: the niceness of the thread that runs background CPU work (19: the lowest priority there is)
BACKGROUND_NICENESS = 19
_background: concurrent.futures.ThreadPoolExecutor | None = None


def _lower_own_priority() -> None:
    """Give the calling thread the lowest CPU priority. On Linux a thread's niceness is its own, so
    this slows only the work given to it, never the event loop's thread nor another process's."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICENESS)


async def run_in_background(function: Callable[..., T], *args: Any) -> T:
    """Run CPU-heavy work that no one waits on at once (a photo's decoding and thumbnail) in a thread
    of the lowest priority, one job at a time: when the machine is busy, the webhooks' requests and
    the chats' turns get the processor first, and the work finishes a little later. (Pillow and
    hashlib release the GIL for the heavy part, so the event loop of this process keeps running.)"""
    global _background
    if _background is None:
        _background = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="caredesk-background", initializer=_lower_own_priority)
    return await asyncio.wrap_future(_background.submit(function, *args))

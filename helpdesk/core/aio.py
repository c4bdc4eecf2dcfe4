"""Small asyncio helpers shared by the parts that run background tasks."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has finished (None: nothing to do)."""
    if task is None:
        return
    task.cancel()
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

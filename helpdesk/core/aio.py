"""Small asyncio helpers shared by the parts that run background tasks."""

from __future__ import annotations

import asyncio
import contextlib


async def cancel_and_wait(task: asyncio.Task | None) -> None:
    """Cancel a background task and wait until it has finished (None: nothing to do)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def log_tasks(logger, limit: int = 500) -> None:
    """Log where every task of the running loop is waiting (``kill -USR1`` a worker to see what a
    process that does nothing is waiting for)."""
    import io

    tasks = asyncio.all_tasks()
    logger.warning("%d asyncio tasks", len(tasks))
    for task in list(tasks)[:limit]:
        out = io.StringIO()
        task.print_stack(limit=12, file=out)
        logger.warning("task %s:\n%s", task.get_name(), out.getvalue())

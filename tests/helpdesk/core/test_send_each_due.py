"""``send_each_due``, the loop care messages and campaign messages go out through: a row whose claim
fails, or whose send fails, is logged and does not hold back the rows after it."""

from __future__ import annotations

import logging
import threading

import pytest

from helpdesk.core.aio import send_each_due


@pytest.mark.anyio
async def test_a_broken_row_is_logged_and_the_others_still_go(caplog):
    claimed_in: set[str] = set()
    sent: list[int] = []

    def claim(row_id: int) -> int | None:
        claimed_in.add(threading.current_thread().name)
        if row_id == 2:
            raise RuntimeError("the row is broken")
        return None if row_id == 3 else row_id  # 3: not to go after all (opted out meanwhile, say)

    async def send(row_id: int) -> None:
        if row_id == 4:
            raise ConnectionError("the platform is down")
        sent.append(row_id)

    log = logging.getLogger("tests.send_each_due")
    with caplog.at_level(logging.ERROR, logger=log.name):
        claimed = await send_each_due([1, 2, 3, 4, 5], claim, send, "test row", log)

    assert claimed == 3  # 1, 4 and 5: the failed send counts, it was claimed and is never sent twice
    assert sent == [1, 5]
    assert threading.current_thread().name not in claimed_in  # claims run in worker threads
    assert [record.getMessage() for record in caplog.records] == [
        "claiming test row 2 failed", "sending test row 4 by None failed"]

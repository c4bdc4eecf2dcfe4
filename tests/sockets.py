"""A test's end of a WebSocket under Starlette's TestClient: frames read with a time limit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

import pytest

Frame = dict[str, Any]


class FrameReader:
    """Reads JSON frames from a TestClient WebSocket session, remembering them in ``seen``."""

    def __init__(self, session: Any):
        self.session = session
        self.seen: list[Frame] = []
        self._reader = ThreadPoolExecutor(max_workers=1)

    def receive(self, timeout: float = 10.0) -> Frame:
        """The next frame from the server."""
        # receive_json blocks without a limit; a reader thread turns a missing frame into a failure.
        future = self._reader.submit(self.session.receive_json)
        try:
            frame = future.result(timeout)
        except FutureTimeout:
            pytest.fail(f"no frame within {timeout}s; frames so far: {self.seen}")
        self.seen.append(frame)
        return frame

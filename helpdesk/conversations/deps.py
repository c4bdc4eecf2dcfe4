"""FastAPI dependencies for the conversations' parts of the application's wiring."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from helpdesk.conversations.typing import TypingRelay


async def get_typing_relay(connection: HTTPConnection) -> TypingRelay:
    """Where agents' typing signals go to reach the customers' channels."""
    return connection.app.state.wiring.typing


TypingDep = Annotated[TypingRelay, Depends(get_typing_relay)]

"""FastAPI dependency for the NLU model this process answers with."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from helpdesk.nlu_admin.service import ModelHolder


async def get_models(connection: HTTPConnection) -> ModelHolder:
    """The holder of the active NLU model."""
    return connection.app.state.wiring.models


ModelsDep = Annotated[ModelHolder, Depends(get_models)]

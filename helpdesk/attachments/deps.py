"""FastAPI dependency for the attachments part of the application's wiring."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from helpdesk.attachments.service import AttachmentService


async def get_attachments(connection: HTTPConnection) -> AttachmentService:
    """The attachment service (storage, limits, signed links)."""
    return connection.app.state.wiring.attachments


AttachmentsDep = Annotated[AttachmentService, Depends(get_attachments)]

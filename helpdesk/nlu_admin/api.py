"""Rasa-compatible parsing endpoint, so existing Rasa clients can talk to CareDesk."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from helpdesk.nlu_admin.deps import ModelsDep

router = APIRouter(tags=["nlu"])


class ParseRequest(BaseModel):
    """Rasa's /model/parse request body."""

    text: str = Field(max_length=10_000)
    message_id: str | None = None


@router.post("/model/parse")
async def parse(body: ParseRequest, models: ModelsDep) -> dict[str, Any]:
    """Intent, ranking and entities of a text, in Rasa's response shape, naming the model version."""
    result = await models.aparse(body.text)
    return result.to_rasa()

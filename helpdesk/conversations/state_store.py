"""The bot's dialogue state kept in the database (the default when Redis is not configured)."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.state import DialogueStateStore
from helpdesk.conversations.models import DialogueState
from helpdesk.core.db import utcnow


class DatabaseStateStore(DialogueStateStore):
    """One row per conversation key; survives restarts."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def _load(self, key: str) -> dict[str, Any]:
        with Session(self._engine) as session:
            row = session.get(DialogueState, key)
            return dict(row.data) if row is not None else {}

    def _save(self, key: str, state: dict[str, Any]) -> None:
        with Session(self._engine) as session:
            row = session.get(DialogueState, key)
            if row is None:
                session.add(DialogueState(key=key, data=state))
            else:
                row.data = dict(state)
                row.updated_at = utcnow()
            session.commit()

    def _delete(self, key: str) -> None:
        with Session(self._engine) as session:
            row = session.get(DialogueState, key)
            if row is not None:
                session.delete(row)
                session.commit()

    async def load(self, key: str) -> dict[str, Any]:
        return await to_thread.run_sync(self._load, key)

    async def save(self, key: str, state: dict[str, Any]) -> None:
        await to_thread.run_sync(self._save, key, state)

    async def delete(self, key: str) -> None:
        await to_thread.run_sync(self._delete, key)

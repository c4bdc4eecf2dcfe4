"""The bot's dialogue state kept in the database (the default when Redis is not configured)."""

from __future__ import annotations

import copy
from typing import Any

from anyio import to_thread
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.state import DialogueStateStore
from helpdesk.conversations.models import DialogueState
from helpdesk.core.db import utcnow


_LOAD = select(DialogueState.__table__.c.data).where(DialogueState.__table__.c.key == bindparam("state_key"))


def load_in(session: Session, key: str) -> dict[str, Any]:
    """The state for ``key`` read within an existing transaction ({} when there is none); a fresh
    copy, decoded from the stored JSON, that the caller may change."""
    data = session.connection().execute(_LOAD, {"state_key": key}).scalar()
    return data if data is not None else {}


def save_in(session: Session, key: str, state: dict[str, Any]) -> None:
    """Write the state for ``key`` within an existing transaction."""
    row = session.get(DialogueState, key)
    if row is None:
        session.add(DialogueState(key=key, data=copy.deepcopy(state)))
    else:
        row.data = copy.deepcopy(state)
        row.updated_at = utcnow()


class DatabaseStateStore(DialogueStateStore):
    """One row per conversation key; survives restarts."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def _load(self, key: str) -> dict[str, Any]:
        with Session(self._engine) as session:
            return load_in(session, key)

    def _save(self, key: str, state: dict[str, Any]) -> None:
        with Session(self._engine) as session:
            save_in(session, key, state)
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

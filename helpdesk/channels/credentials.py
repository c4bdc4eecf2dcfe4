"""Rotating channel credentials stored encrypted in the database."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import ExitStack, asynccontextmanager

from anyio import CancelScope, to_thread
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from helpdesk.channels.models import ChannelCredential
from helpdesk.core.crypto import SecretBox
from helpdesk.core.db import exclusive, utcnow

log = logging.getLogger(__name__)


class DatabaseCredentialStore:
    """One channel's rotating credentials (e.g. Zalo OA's token pair), encrypted at rest, replaced in
    one transaction."""

    def __init__(self, engine: Engine, box: SecretBox, channel: str, model: type[BaseModel]):
        self._engine = engine
        self._box = box
        self.channel = channel
        self._model = model

    def _load(self) -> BaseModel | None:
        with Session(self._engine) as session:
            row = session.get(ChannelCredential, self.channel)
            if row is None:
                return None
            try:
                return self._model.model_validate_json(self._box.open(row.ciphertext))
            except ValueError as exc:  # secret key changed: fall back to the configured credentials
                log.error("stored %s credentials are unreadable (%s); using the configured ones",
                          self.channel, exc)
                return None

    def _save(self, value: BaseModel) -> None:
        with Session(self._engine) as session:
            row = session.get(ChannelCredential, self.channel)
            sealed = self._box.seal(value.model_dump_json())
            if row is None:
                session.add(ChannelCredential(channel=self.channel, ciphertext=sealed))
            else:
                row.ciphertext = sealed
                row.updated_at = utcnow()
            session.commit()

    async def load(self) -> BaseModel | None:
        """The saved credentials, if any."""
        return await to_thread.run_sync(self._load)

    async def save(self, value: BaseModel) -> None:
        """Replace the saved credentials; durable when this returns."""
        await to_thread.run_sync(self._save, value)

    @asynccontextmanager
    async def renewing(self) -> AsyncIterator[None]:
        """Held while the credentials are renewed: one renewal at a time among all the processes that
        share the database (a Zalo refresh token works once: a second process renewing with the same
        one would be refused and lose the channel)."""
        held = ExitStack()
        await to_thread.run_sync(held.enter_context, exclusive(self._engine, f"caredesk:credentials:{self.channel}"))
        try:
            yield
        finally:
            with CancelScope(shield=True):
                await to_thread.run_sync(held.close)

def reseal_credentials(engine: Engine, box: SecretBox) -> tuple[list[str], list[str]]:
    """Seal every stored channel credential with the box's current key (after a secret rotation), in
    one transaction: the channels re-sealed, and those that none of the box's keys opens (left as
    they are). Blocking."""
    resealed, unreadable = [], []
    with Session(engine) as session:
        for row in session.exec(select(ChannelCredential).order_by(ChannelCredential.channel)).all():
            if box.sealed_with_current(row.ciphertext):
                continue
            try:
                row.ciphertext = box.reseal(row.ciphertext)
            except ValueError:
                unreadable.append(row.channel)
                continue
            row.updated_at = utcnow()
            resealed.append(row.channel)
        session.commit()
    return resealed, unreadable

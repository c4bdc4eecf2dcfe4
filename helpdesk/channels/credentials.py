"""Rotating channel credentials stored encrypted in the database."""

from __future__ import annotations

import logging

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import Session

from connectors.zalo_oa import ZaloTokens
from helpdesk.channels.models import ChannelCredential
from helpdesk.core.crypto import SecretBox
from helpdesk.core.db import utcnow

log = logging.getLogger(__name__)


class DatabaseZaloTokenStore:
    """Zalo OA's access/refresh token pair, encrypted at rest, replaced in one transaction."""

    channel = "zalo_oa"

    def __init__(self, engine: Engine, box: SecretBox):
        self._engine = engine
        self._box = box

    def _load(self) -> ZaloTokens | None:
        with Session(self._engine) as session:
            row = session.get(ChannelCredential, self.channel)
            if row is None:
                return None
            try:
                return ZaloTokens.model_validate_json(self._box.open(row.ciphertext))
            except ValueError as exc:  # secret key changed: fall back to the configured tokens
                log.error("stored Zalo tokens are unreadable (%s); using the configured ones", exc)
                return None

    def _save(self, tokens: ZaloTokens) -> None:
        with Session(self._engine) as session:
            row = session.get(ChannelCredential, self.channel)
            sealed = self._box.seal(tokens.model_dump_json())
            if row is None:
                session.add(ChannelCredential(channel=self.channel, ciphertext=sealed))
            else:
                row.ciphertext = sealed
                row.updated_at = utcnow()
            session.commit()

    async def load(self) -> ZaloTokens | None:
        """The saved pair, if any."""
        return await to_thread.run_sync(self._load)

    async def save(self, tokens: ZaloTokens) -> None:
        """Replace the saved pair; durable when this returns."""
        await to_thread.run_sync(self._save, tokens)

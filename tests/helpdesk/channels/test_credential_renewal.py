"""Renewing a channel's rotating credentials from several processes at once: Zalo OA's refresh token
works once, so only one process may renew the pair; the others wait and use what it saved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from connectors.zalo_oa import ZaloOAConfig, ZaloOAConnector, ZaloTokens
from helpdesk.channels.credentials import DatabaseCredentialStore
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.crypto import SecretBox
from helpdesk.core.db import migrate
from tests.fakes.zalo_api import FakeZaloOA

APP_ID = "3608465248940903967"
APP_SECRET = "app-secret-key-for-tests"
OA_ID = "388613280878808645"
CUSTOMER = "2468458835296117922"
#: 10:00 in Ho Chi Minh City, inside Zalo's daytime sending window
MORNING = datetime(2024, 11, 25, 3, 0, tzinfo=UTC)
PROCESSES = 3


async def test_only_one_process_renews_the_zalo_token_pair(database_url: str) -> None:
    engines = [make_database_engine(database_url) for _ in range(PROCESSES)]
    migrate(engines[0])
    box = SecretBox("renewal-test-secret-key")
    with FakeZaloOA(app_id=APP_ID, app_secret_key=APP_SECRET, oa_id=OA_ID) as zalo:
        config = ZaloOAConfig(app_id=APP_ID, oa_secret_key="oa-secret", app_secret_key=APP_SECRET,
                              access_token=zalo.access_token, refresh_token=zalo.refresh_token,
                              api_base=zalo.base_url, oauth_base=zalo.base_url, request_timeout_s=2)
        # each "process" has its own connector, store and engine; they share the database
        connectors = [ZaloOAConnector(config, DatabaseCredentialStore(engine, box, "zalo_oa", ZaloTokens),
                                      clock=lambda: MORNING) for engine in engines]
        zalo.expire_access_token()
        zalo.delay_next(0.3, "token")  # the first renewal is still under way when the others need one
        try:
            ids = await asyncio.gather(*(connector.send_text(CUSTOMER, f"Tin {n}")
                                         for n, connector in enumerate(connectors)))
        finally:
            for connector in connectors:
                await connector.close()
            for engine in engines:
                engine.dispose()
        assert len(set(ids)) == PROCESSES
        assert zalo.refresh_count == 1
        assert len(zalo.sent_messages()) == PROCESSES

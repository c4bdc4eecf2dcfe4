"""Dialogue state storage: in memory, in Redis (real server) and in the database."""

from __future__ import annotations

import pytest

from bot.state import MemoryStateStore, RedisStateStore
from helpdesk.conversations.state_store import DatabaseStateStore
from helpdesk.channels.ledger import make_database_engine
from helpdesk.core.db import migrate


@pytest.fixture(params=["memory", "redis", "database"])
async def store(request, tmp_path):
    if request.param == "memory":
        yield MemoryStateStore()
    elif request.param == "redis":
        import redis.asyncio as aioredis

        client = aioredis.from_url(request.getfixturevalue("redis_url"), decode_responses=True)
        yield RedisStateStore(client)
        await client.aclose()
    else:
        engine = make_database_engine(f"sqlite:///{tmp_path}/state.db")
        migrate(engine)
        yield DatabaseStateStore(engine)
        engine.dispose()


async def test_unknown_conversation_has_empty_state(store):
    assert await store.load("conversation:1") == {}


async def test_saved_state_is_loaded_back(store):
    await store.save("conversation:1", {"awaiting": "order_id", "slots": {"phone": "0901234567"}, "locale": "vi"})
    assert await store.load("conversation:1") == {"awaiting": "order_id", "slots": {"phone": "0901234567"},
                                                  "locale": "vi"}


async def test_changing_a_loaded_state_does_not_change_the_stored_one(store):
    await store.save("conversation:2", {"slots": {}})
    loaded = await store.load("conversation:2")
    loaded["slots"]["order_id"] = "DH1"
    assert await store.load("conversation:2") == {"slots": {}}


async def test_deleted_state_is_gone(store):
    await store.save("conversation:3", {"turns": 4})
    await store.delete("conversation:3")
    assert await store.load("conversation:3") == {}


async def test_database_state_survives_a_new_store_on_the_same_database(tmp_path):
    engine = make_database_engine(f"sqlite:///{tmp_path}/state.db")
    migrate(engine)
    await DatabaseStateStore(engine).save("conversation:9", {"fallbacks": 1})
    assert await DatabaseStateStore(engine).load("conversation:9") == {"fallbacks": 1}
    engine.dispose()

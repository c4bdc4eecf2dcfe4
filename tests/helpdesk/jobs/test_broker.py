"""The embedded broker between a server and its child process (without Redis)."""

from __future__ import annotations

import asyncio
import os

from helpdesk.jobs.broker import BrokerClient, LocalBroker


async def test_broker_fans_out_between_processes_and_to_itself(tmp_path):
    broker = LocalBroker(tmp_path / "b" / "broker.sock")
    await broker.start()
    try:
        client = BrokerClient(broker.path)
        await client.connect()
        mine, theirs = broker.pubsub(), client.pubsub()
        await mine.subscribe("room")
        await theirs.subscribe("room")
        await asyncio.sleep(0.05)  # the subscription line reaches the broker
        await broker.publish("room", "from server")
        await asyncio.sleep(0.05)
        await client.publish("room", "from client")
        got_server = [await anext(mine.listen()), await anext(mine.listen())]
        got_client = [await anext(theirs.listen()), await anext(theirs.listen())]
        assert [m["data"] for m in got_server] == ["from server", "from client"]
        assert [m["data"] for m in got_client] == ["from server", "from client"]
        assert oct(os.stat(broker.path.parent).st_mode & 0o777) == "0o700"
        await client.aclose()
        await asyncio.sleep(0.05)
        assert broker.peer_count() == 0
    finally:
        await broker.stop()
    assert not broker.path.exists()

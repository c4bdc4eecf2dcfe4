"""Two app replicas sharing PostgreSQL and Redis: an event made where the work runs reaches the live
inbox sockets held by every replica (the event bus relays domain events through Redis)."""

from __future__ import annotations

import warnings

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.helpdesk.inbox.test_inbox_live import Inbox, LiveSocket, about, from_customer, inbox_app

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


def test_a_message_processed_on_one_replica_is_heard_on_the_sockets_of_both(make_settings, postgres_url, redis_url):
    settings = make_settings(database_url=postgres_url, redis_url=redis_url)
    first_app, second_app = inbox_app(settings), inbox_app(settings)
    with TestClient(first_app, client=("127.0.0.1", 50000)) as first_client, \
            TestClient(second_app, client=("127.0.0.1", 50001)) as second_client:
        first, second = Inbox(first_client), Inbox(second_client)
        cookies = [first.browser_session(ADMIN_EMAIL, ADMIN_PASSWORD),
                   second.browser_session(ADMIN_EMAIL, ADMIN_PASSWORD)]
        with first.live(cookies[0]) as on_first, second.live(cookies[1]) as on_second:
            sockets = [LiveSocket(on_first), LiveSocket(on_second)]
            for socket in sockets:
                assert socket.receive()["type"] == "hello"
            # processed by the first replica's worker side; the second replica did no work for it
            conversation_id = first.customer_says("replica-fan", "cho mình hỏi giờ mở cửa")
            for socket in sockets:
                frames = socket.wait_for(lambda frame: from_customer(frame) and about(conversation_id)(frame))
                assert frames[-1]["conversation_id"] == conversation_id

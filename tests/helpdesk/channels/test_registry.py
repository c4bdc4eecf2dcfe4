"""A channel is one connector class plus one registry entry: nothing else in CareDesk lists channels.

The test channel here is registered only in ``connectors.CONNECTORS``; its settings, webhook route,
handshake and replies come from what the class declares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel

from connectors import CONNECTORS
from connectors.base import (
    ChannelConnector,
    InboundMessage,
    PayloadError,
    ProactiveWindow,
    VerificationError,
    WebhookRequest,
    secrets_match,
)
from tests.conftest import CareDeskClient, start_client

TOKEN = "loopback-secret"


class LoopbackConfig(BaseModel):
    """The test channel's settings (``CAREDESK_LOOP_BACK__*``)."""

    token: str = ""


class LoopbackConnector(ChannelConnector):
    """A channel that exists only in this test: token-checked webhooks in, replies kept in a list."""

    name: ClassVar[str] = "loop_back"
    config_model: ClassVar[type[BaseModel]] = LoopbackConfig
    proactive_window: ClassVar[ProactiveWindow] = ProactiveWindow("Loopback", timedelta(hours=1))

    def __init__(self, config: LoopbackConfig):
        self.config = config
        self.sent: list[tuple[str, str]] = []

    @property
    def enabled(self) -> bool:
        """On once a token is configured."""
        return bool(self.config.token)

    def webhook_handshake(self, query: Any) -> str:
        """Echo ``challenge`` to a caller that knows the token."""
        if not secrets_match(self.config.token, query.get("token")):
            raise VerificationError("wrong token")
        return query.get("challenge", "")

    async def verify(self, request: WebhookRequest) -> None:
        """Accept only requests carrying the configured token."""
        if not secrets_match(self.config.token, request.header("X-Loopback-Token")):
            raise VerificationError("wrong token")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """``{"from": ..., "id": ..., "text": ...}`` -> one message."""
        if not isinstance(payload, dict) or not {"from", "id", "text"} <= payload.keys():
            raise PayloadError("expected from, id and text")
        return [InboundMessage(channel=self.name, sender_id=payload["from"], external_id=payload["id"],
                               text=payload["text"])]

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Keep the reply where the test can read it."""
        self.sent.append((recipient_id, text))
        return f"loop-{len(self.sent)}"


@pytest.fixture
async def loopback_client(monkeypatch, make_settings) -> AsyncIterator[CareDeskClient]:
    """The app with the test channel registered and turned on from the environment."""
    monkeypatch.setitem(CONNECTORS, LoopbackConnector.name, LoopbackConnector)
    monkeypatch.setenv("CAREDESK_LOOP_BACK__TOKEN", TOKEN)
    async for client in start_client(make_settings()):
        yield client


async def test_a_channel_registered_in_one_place_answers_through_its_own_send_text(loopback_client):
    connector = loopback_client.wiring.connectors["loop_back"]
    assert connector.config.token == TOKEN  # read from CAREDESK_LOOP_BACK__TOKEN
    response = await loopback_client.post("/webhooks/loop-back", headers={"X-Loopback-Token": TOKEN},
                                          json={"from": "lan", "id": "m-1",
                                                "text": "Sản phẩm bên shop bảo hành bao lâu vậy?"})
    assert response.status_code == 200, response.text
    await loopback_client.settle()
    assert [recipient for recipient, _ in connector.sent] == ["lan"]
    assert "12 tháng" in connector.sent[0][1]


async def test_a_registered_channel_refuses_a_webhook_without_its_token(loopback_client):
    response = await loopback_client.post("/webhooks/loop-back", json={"from": "lan", "id": "m-2", "text": "hi"})
    assert response.status_code == 403
    assert loopback_client.wiring.connectors["loop_back"].sent == []


async def test_the_webhook_handshake_is_the_connectors_own(loopback_client):
    answered = await loopback_client.get("/webhooks/loop-back", params={"token": TOKEN, "challenge": "c-42"})
    assert (answered.status_code, answered.text) == (200, "c-42")
    refused = await loopback_client.get("/webhooks/loop-back", params={"token": "nope", "challenge": "c-42"})
    assert refused.status_code == 403


async def test_a_channel_without_a_handshake_answers_get_with_405_and_an_off_channel_with_404(loopback_client):
    no_handshake = await loopback_client.get("/webhooks/cli")
    assert no_handshake.status_code == 405 and no_handshake.headers["allow"] == "POST"
    assert "POST only" in no_handshake.text
    assert (await loopback_client.get("/webhooks/telegram")).status_code == 404


async def test_a_channel_without_its_setting_stays_off(monkeypatch, make_settings):
    monkeypatch.setitem(CONNECTORS, LoopbackConnector.name, LoopbackConnector)
    async for client in start_client(make_settings()):
        assert "loop_back" not in client.wiring.connectors
        assert (await client.post("/webhooks/loop-back", json={})).status_code == 404

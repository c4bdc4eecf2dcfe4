"""Bodies that are too big or too deeply nested get a clear 4xx before anything reads them, and
nothing of them is stored."""

from __future__ import annotations

import json

from helpdesk.channels.models import InboundEvent
from tests.conftest import TELEGRAM_SECRET, start_client
from tests.helpdesk.channels.test_telegram_flow import count_rows, telegram_update
from tests.helpdesk.channels.test_zalo_flow import oa_client, oa_event, post_oa, zalo_oa  # noqa: F401 (fixtures)

MiB = 1024 * 1024
TELEGRAM_HEADERS = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}


def padded_update(size: int) -> bytes:
    """A well-formed, correctly authenticated Telegram update of about ``size`` bytes."""
    update = telegram_update(9001, "bảo hành bao lâu")
    update["message"]["padding"] = "x" * size
    return json.dumps(update).encode()


async def test_signed_webhook_over_a_mebibyte_is_refused_with_413_and_not_stored(telegram_client):
    response = await telegram_client.post("/webhooks/telegram", content=padded_update(MiB),
                                          headers=TELEGRAM_HEADERS)
    assert response.status_code == 413
    assert "bytes" in response.json()["detail"]
    assert count_rows(telegram_client, InboundEvent) == 0


async def test_streamed_webhook_body_over_the_limit_is_refused_with_413(telegram_client):
    body = padded_update(2 * MiB)

    async def chunks():
        for start in range(0, len(body), 64 * 1024):
            yield body[start:start + 64 * 1024]

    response = await telegram_client.post("/webhooks/telegram", content=chunks(), headers=TELEGRAM_HEADERS)
    assert response.status_code == 413
    assert count_rows(telegram_client, InboundEvent) == 0


async def test_webhook_under_the_limit_is_still_stored(telegram_client):
    response = await telegram_client.post("/webhooks/telegram", content=padded_update(100_000),
                                          headers=TELEGRAM_HEADERS)
    assert response.status_code == 200
    assert count_rows(telegram_client, InboundEvent) == 1


async def test_thousand_deep_body_on_zalo_oa_is_refused_with_400_before_the_signature_check(oa_client):
    body = b"[" * 1000 + b"]" * 1000
    response = await oa_client.post("/webhooks/zalo-oa", content=body,
                                    headers={"X-ZEvent-Signature": "mac=00", "Content-Type": "application/json"})
    assert response.status_code == 400
    assert "nested deeper than 64" in response.json()["detail"]
    assert count_rows(oa_client, InboundEvent) == 0


async def test_deeply_nested_field_in_a_signed_oa_event_is_refused_with_400(oa_client, zalo_oa):
    event = oa_event(zalo_oa.app_id, "alo", "deep-1")
    event["message"]["extra"] = json.loads("[" * 100 + "]" * 100)
    response = await post_oa(oa_client, event, zalo_oa.app_id)
    assert response.status_code == 400
    assert count_rows(oa_client, InboundEvent) == 0


async def test_deep_json_to_the_api_gets_400_never_500(client):
    headers = await client.login()
    for depth in (65, 900, 5000):
        body = '{"text": ' + "[" * depth + "]" * depth + "}"
        for path in ("/api/conversations/1/messages", "/model/parse"):
            response = await client.post(path, content=body, headers={**headers, "Content-Type": "application/json"})
            assert response.status_code == 400, (path, depth, response.text)


async def test_import_route_takes_more_than_the_api_default(client):
    headers = await client.login()
    yaml = "version: '3.1'\nnlu: []\n" + "# padding\n" * (2 * MiB // 10)
    response = await client.post("/api/nlu/import", content=yaml.encode(),
                                 headers={**headers, "Content-Type": "application/x-yaml"})
    assert response.status_code != 413, response.text
    too_big = await client.post("/api/conversations/1/messages", content=b"x" * (2 * MiB),
                                headers={**headers, "Content-Type": "application/json"})
    assert too_big.status_code == 413


async def test_limits_are_settings(make_settings, fake_telegram):
    settings = make_settings(limits={"webhook_body_bytes": 2000, "json_max_depth": 3},
                             telegram={"token": fake_telegram.token, "secret_token": TELEGRAM_SECRET,
                                       "api_base": fake_telegram.base_url})
    async for client in start_client(settings):
        response = await client.post("/webhooks/telegram", content=padded_update(3000), headers=TELEGRAM_HEADERS)
        assert response.status_code == 413
        response = await client.post("/webhooks/telegram", content=b'{"a": [[[1]]]}', headers=TELEGRAM_HEADERS)
        assert response.status_code == 400

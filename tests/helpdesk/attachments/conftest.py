"""An app with Messenger pointed at the fake Graph API, files on a loopback file host (the CDN
Messenger's attachment URLs point at), and attachments stored under the test's own directory."""

from __future__ import annotations

import json

import pytest

from tests.conftest import start_client
from tests.fakes.facebook_api import FakeGraphAPI, sign
from tests.fakes.file_host import FileHost

APP_SECRET = "fb-app-secret"
PAGE_ID = "104857600123456"
PSID = "6843215790123456"
#: a small cap, so that "over the limit" needs no large file
MAX_BYTES = 300_000


@pytest.fixture
def host():
    with FileHost() as fake:
        yield fake


@pytest.fixture
def graph():
    with FakeGraphAPI(page_access_token="EAAG-page-token", page_id=PAGE_ID) as fake:
        yield fake


@pytest.fixture
def storage_dir(tmp_path):
    return tmp_path / "attachments"


@pytest.fixture
def app_settings(make_settings, graph, storage_dir):
    return make_settings(
        facebook={"verify_token": "v", "app_secret": APP_SECRET, "page_access_token": "EAAG-page-token",
                  "graph_api_base": graph.base_url},
        storage={"local_dir": str(storage_dir), "max_bytes": MAX_BYTES},
        secret_key="attachments-test-secret-key")


@pytest.fixture
async def client(app_settings):
    async for running in start_client(app_settings):
        yield running


def messenger_event(mid: str, attachments: list[dict], text: str | None = None, psid: str = PSID) -> dict:
    """A Messenger webhook with one message carrying ``attachments`` (and ``text``, a caption)."""
    message: dict = {"mid": mid, "attachments": attachments}
    if text is not None:
        message["text"] = text
    return {"object": "page", "entry": [{"id": PAGE_ID, "time": 1764000000000, "messaging": [{
        "sender": {"id": psid}, "recipient": {"id": PAGE_ID}, "timestamp": 1764000000000, "message": message}]}]}


def image(url: str) -> dict:
    """A Messenger image attachment."""
    return {"type": "image", "payload": {"url": url}}


async def post_messenger(client, payload: dict):
    body = json.dumps(payload).encode()
    return await client.post("/webhooks/facebook", content=body,
                             headers={"X-Hub-Signature-256": sign(body, APP_SECRET),
                                      "Content-Type": "application/json"})


async def customer_messages(client, headers) -> tuple[int, list[dict]]:
    """The conversation's id and its customer's messages as the API shows them."""
    conversations = (await client.get("/api/conversations", headers=headers)).json()["data"]
    conversation_id = conversations[0]["id"]
    response = await client.get(f"/api/conversations/{conversation_id}/messages", headers=headers)
    assert response.status_code == 200, response.text
    return conversation_id, [m for m in response.json()["data"] if m["author"] == "customer"]

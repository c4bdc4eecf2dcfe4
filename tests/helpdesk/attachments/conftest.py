"""An app with Messenger pointed at the fake Graph API, files on a loopback file host (the CDN
Messenger's attachment URLs point at), and attachments stored under the test's own directory; and
a test channel (``file_drop``) whose platform is that file host: it takes attachments of any shape
and uploads files there."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import httpx
import pytest
from pydantic import BaseModel

from connectors import CONNECTORS
from connectors.base import (
    Attachment,
    AttachmentKind,
    ChannelConnector,
    DeliveryError,
    InboundMessage,
    MediaFile,
    WebhookRequest,
)
from tests.conftest import start_client
from tests.fakes.facebook_api import FakeGraphAPI, sign
from tests.fakes.file_host import FileHost

APP_SECRET = "fb-app-secret"
PAGE_ID = "104857600123456"
PSID = "6843215790123456"
#: a small cap, so that "over the limit" needs no large file
MAX_BYTES = 300_000
#: the object store's credentials and bucket (moto's S3 server)
ACCESS_KEY, SECRET_KEY, BUCKET = "test-access-key", "test-secret-key", "caredesk-files"


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3-protocol HTTP server on a free loopback port (a real S3 endpoint to boto3); its URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_bucket(endpoint: str):
    """A boto3 client of the server, with the test bucket made if it is not there yet."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=ACCESS_KEY,
                          aws_secret_access_key=SECRET_KEY, region_name="us-east-1")
    if BUCKET not in {bucket["Name"] for bucket in client.list_buckets().get("Buckets", [])}:
        client.create_bucket(Bucket=BUCKET)
    return client


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


class FileDropConfig(BaseModel):
    """Where the test channel's platform listens."""

    base_url: str = ""


class FileDropConnector(ChannelConnector):
    """A channel that exists only in these tests: texts kept in a list, files uploaded over HTTP to
    the file host, which may refuse them as a platform would."""

    name: ClassVar[str] = "file_drop"
    config_model: ClassVar[type[BaseModel]] = FileDropConfig
    #: photos up to 20 kB, documents up to 100 kB, no video or audio
    media_limits: ClassVar[dict[str, int]] = {"image": 20_000, "file": 100_000}

    def __init__(self, config: FileDropConfig):
        self.config = config
        self.texts: list[str] = []

    @property
    def enabled(self) -> bool:
        return bool(self.config.base_url)

    async def verify(self, request: WebhookRequest) -> None:
        return None

    def parse(self, payload: Any) -> list[InboundMessage]:
        attachments = tuple(Attachment(**item) for item in payload.get("attachments", ()))
        return [InboundMessage(channel=self.name, sender_id=payload["sender_id"], external_id=payload["id"],
                               text=payload.get("text", ""), attachments=attachments)]

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        self.texts.append(text)
        return f"text-{len(self.texts)}"

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(f"{self.config.base_url}/upload", content=file.data, headers={
                "Content-Type": file.mime_type or "application/octet-stream", "X-Kind": kind,
                "X-File-Name": httpx.QueryParams({"n": file.name or ""})["n"].encode("ascii", "ignore").decode(),
                "X-Caption": caption.encode("ascii", "ignore").decode(), "X-Recipient": recipient_id})
        if response.status_code >= 400:
            raise DeliveryError(response.json()["error"], retryable=response.status_code >= 500)
        return response.json()["message_id"]


@pytest.fixture
async def drop_client(make_settings, host, storage_dir, monkeypatch):
    """The app with the test channel on, its platform the file host."""
    monkeypatch.setitem(CONNECTORS, FileDropConnector.name, FileDropConnector)
    settings = make_settings(file_drop={"base_url": host.base_url},
                             storage={"local_dir": str(storage_dir), "max_bytes": MAX_BYTES})
    async for running in start_client(settings):
        yield running

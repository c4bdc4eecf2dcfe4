"""Training-loop fixtures: an app with a model store of its own (retrains and activations must not
reach the session's shared store), customers writing on the cli channel, agents, and review helpers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from pathlib import Path

import pytest
from sqlmodel import Session, select

from helpdesk.conversations.models import Message, MessageAuthor
from tests.conftest import ROOT, CareDeskClient, start_client

AGENT_PASSWORD = "agent-pass-1"
#: the shipped model answers this with nlu_fallback (it knows no phrasing of "is a repair after the
#: warranty charged"; its best real intent scored 0.17 against the 0.40 threshold after the held-out
#: rounds of #19 broadened the data, which taught it that repairing other brands is out of scope)
MISUNDERSTOOD = "hết hạn rồi sửa có mất phí không"
#: what it means
MISUNDERSTOOD_INTENT = "ask_warranty_policy"
#: understood with full confidence: never queued for review
CLEAR = "cho mình gặp nhân viên"

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The training set's storage tests on PostgreSQL are seconds each (the shipped set is 1,800
    examples, written and read back): slow, left out of the fast path (their SQLite runs stay in)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (callspec is not None and callspec.params.get("database_url") == "postgresql"
                and HERE in item.path.parents):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def models_dir(tmp_path: Path, trained_models_dir: Path) -> Path:
    """A private copy of the session's trained model store (one active model)."""
    target = tmp_path / "models"
    shutil.copytree(trained_models_dir, target)
    return target


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """The migrated test database with the training set already read from data/nlu (seeding once
    instead of in every test)."""
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.training.dataset import ensure_seeded

    path = tmp_path_factory.mktemp("training-template") / "caredesk.db"
    shutil.copyfile(sqlite_template, path)
    engine = make_database_engine(f"sqlite:///{path}")
    ensure_seeded(engine, ROOT / "data")
    engine.dispose()
    return path


@pytest.fixture
def seeded_sqlite_url(tmp_path: Path, seeded_template: Path) -> str:
    """A database of this test's own, migrated and seeded."""
    shutil.copyfile(seeded_template, tmp_path / "seeded.db")
    return f"sqlite:///{tmp_path}/seeded.db"


@pytest.fixture
def training_settings(make_settings, models_dir: Path, seeded_sqlite_url: str) -> Callable[..., object]:
    """Settings factory: this test's own seeded database and model store."""

    def make(**overrides: object):
        return make_settings(**{"database_url": seeded_sqlite_url, "nlu": {"models_dir": models_dir}, **overrides})

    return make


@pytest.fixture
async def app(training_settings) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite with a private model store."""
    async for client in start_client(training_settings()):
        yield client


@pytest.fixture
async def storage_app(make_settings, database_url: str, models_dir: Path) -> AsyncIterator[CareDeskClient]:
    """The app on SQLite and on the real PostgreSQL (migrated from empty), with a private model store."""
    async for client in start_client(make_settings(database_url=database_url, nlu={"models_dir": models_dir})):
        yield client


async def customer_says(client: CareDeskClient, sender: str, text: str, message_id: str | None = None) -> None:
    """A customer writes on the cli channel and the bot answers."""
    response = await client.post("/webhooks/cli", json={
        "sender_id": sender, "message_id": message_id or f"{sender}-{abs(hash(text)) % 10**9}",
        "text": text, "name": sender})
    assert response.status_code == 200, response.text
    await client.settle()


def customer_message(client: CareDeskClient, text: str) -> Message:
    """The newest customer message with this text."""
    with Session(client.wiring.engine) as session:
        message = session.exec(select(Message).where(Message.author == MessageAuthor.customer, Message.text == text)
                               .order_by(Message.id.desc())).first()
        assert message is not None, text
        return message


def rewrite_message(client: CareDeskClient, message_id: int, **values: object) -> None:
    """Change a stored message (its channel, its time) before the review queue reads it."""
    with Session(client.wiring.engine) as session:
        message = session.get(Message, message_id)
        for key, value in values.items():
            setattr(message, key, value)
        session.add(message)
        session.commit()


async def make_agent(client: CareDeskClient, admin: dict[str, str], email: str, role: str = "agent") -> dict[str, str]:
    """A new agent account; returns its authorization headers."""
    response = await client.post("/api/agents", headers=admin, json={
        "email": email, "name": email.split("@")[0], "password": AGENT_PASSWORD, "role": role})
    assert response.status_code == 201, response.text
    return await client.login(email, AGENT_PASSWORD)


async def review_groups(client: CareDeskClient, headers: dict[str, str], **params: object) -> list[dict]:
    """The review queue's groups."""
    response = await client.get("/api/nlu/review", headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def group_with(groups: list[dict], text: str) -> dict | None:
    """The group showing this text, if any."""
    return next((group for group in groups if text in group["texts"]), None)


def iso(moment: datetime) -> str:
    """An aware time as the API takes it."""
    return moment.isoformat()

"""The conversation engine with the real trained model and the shipped texts."""

from __future__ import annotations

import shutil

import pytest

from bot import ConversationEngine, Knowledge, Responses, Turn
from bot.state import MemoryStateStore
from helpdesk.channels.ledger import inbound_database_path, make_database_engine
from helpdesk.nlu_admin.service import ModelHolder
from helpdesk.nlu_admin.store import DatabaseModelStore
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def models(tmp_path_factory, sqlite_template, trained_models_dir):
    """The trained model, loaded once for the module from a database of its own (the session's
    trained model directory is imported into it)."""
    path = tmp_path_factory.mktemp("bot-engine") / "caredesk.db"
    shutil.copyfile(sqlite_template, path)
    shutil.copyfile(inbound_database_path(f"sqlite:///{sqlite_template}"), inbound_database_path(f"sqlite:///{path}"))
    database = make_database_engine(f"sqlite:///{path}")
    holder = ModelHolder(DatabaseModelStore(database, trained_models_dir))
    assert holder.load_active()
    yield holder
    database.dispose()


@pytest.fixture
def engine(models):
    return ConversationEngine(
        parser=models,
        responses=Responses.load(ROOT / "data" / "bot"),
        knowledge=Knowledge.load(ROOT / "data" / "faq"),
        state_store=MemoryStateStore(),
        template_values={"shop": "Bếp Việt Demo"},
    )


def turn(text: str, key: str = "conversation:1", **kwargs) -> Turn:
    return Turn(conversation_key=key, recipient_id="42", channel="cli", text=text, **kwargs)


async def test_warranty_question_gets_the_faq_answer_in_vietnamese(engine):
    decision = await engine.handle(turn("bảo hành bao lâu vậy shop"))
    assert decision.nlu.intent.name == "ask_warranty_policy"
    assert decision.locale == "vi"
    assert "12 tháng" in decision.replies[0].text
    assert decision.escalation is None


async def test_english_question_gets_an_english_answer(engine):
    decision = await engine.handle(turn("How long is the warranty on your products?"))
    assert decision.locale == "en"
    assert "12-month warranty" in decision.replies[0].text


async def test_asking_for_a_person_escalates(engine):
    decision = await engine.handle(turn("cho mình gặp nhân viên"))
    assert decision.escalation is not None and decision.escalation.reason == "customer_request"
    assert decision.replies


async def test_complaint_escalates_with_high_priority(engine):
    decision = await engine.handle(turn("nhân viên giao hàng thái độ quá tệ, mình rất bực"))
    assert decision.escalation is not None
    assert decision.escalation.priority == "high"


async def test_two_misunderstandings_in_a_row_hand_over(engine):
    first = await engine.handle(turn("xyzzy qwerty plugh"))
    assert first.escalation is None and first.replies
    second = await engine.handle(turn("blorp snarf wibble"))
    assert second.escalation is not None and second.escalation.reason == "bot_failed"


async def test_bot_stays_silent_when_a_person_owns_the_conversation(engine):
    decision = await engine.handle(turn("bảo hành bao lâu", human_owned=True))
    assert decision.replies == [] and decision.escalation is None
    assert decision.nlu is not None  # still read, for the inbox and for training


async def test_conversations_do_not_share_state(engine):
    await engine.handle(turn("xyzzy qwerty plugh", key="conversation:1"))
    other = await engine.handle(turn("blorp snarf wibble", key="conversation:2"))
    assert other.escalation is None

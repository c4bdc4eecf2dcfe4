"""Product questions answered from the shop's catalog, through the real engine and trained model, with
the catalog read from the database the demo shop was loaded into."""

from __future__ import annotations

import shutil

import pytest
from sqlmodel import Session

from bot import ConversationEngine, Knowledge, Responses, Turn
from bot.context import Services
from bot.ports import NullShop, ProductView
from bot.state import MemoryStateStore
from helpdesk.channels.ledger import inbound_database_path, make_database_engine
from helpdesk.shop.directory import DatabaseShopDirectory
from helpdesk.shop.service import load_shop_file
from tests.bot.test_engine import models  # noqa: F401 (the module-scoped trained model)
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def shop_database(tmp_path_factory, sqlite_template):
    """A database with the demo shop loaded (products with prices and stock)."""
    path = tmp_path_factory.mktemp("products") / "caredesk.db"
    shutil.copyfile(sqlite_template, path)
    shutil.copyfile(inbound_database_path(f"sqlite:///{sqlite_template}"), inbound_database_path(f"sqlite:///{path}"))
    database = make_database_engine(f"sqlite:///{path}")
    with Session(database) as session:
        load_shop_file(session, ROOT / "data" / "demo" / "shop.yml")
        session.commit()
    yield database
    database.dispose()


def make_engine(parser, shop) -> ConversationEngine:
    return ConversationEngine(
        parser=parser,
        responses=Responses.load(ROOT / "data" / "bot"),
        knowledge=Knowledge.load(ROOT / "data" / "faq"),
        state_store=MemoryStateStore(),
        template_values={"shop": "Bếp Việt Demo"},
        services=Services(shop=shop),
    )


@pytest.fixture
def engine(models, shop_database):  # noqa: F811
    return make_engine(models, DatabaseShopDirectory(shop_database))


def turn(text: str, key: str = "conversation:1") -> Turn:
    return Turn(conversation_key=key, recipient_id="42", channel="cli", text=text)


def replies(decision) -> str:
    return "\n".join(reply.text for reply in decision.replies)


@pytest.mark.parametrize("text", ["nồi chiên bảo hành mấy tháng", "noi chien bao hanh may thang"])
async def test_warranty_period_of_a_product_is_its_own(engine, text):
    decision = await engine.handle(turn(text))
    assert decision.handled_by == "products.answer_product_question"
    assert "Nồi chiên không dầu Bếp Việt 5.5L được bảo hành 12 tháng" in replies(decision)


async def test_warranty_period_differs_per_product(engine):
    decision = await engine.handle(turn("máy xay sinh tố bảo hành bao lâu vậy shop"))
    assert "Máy xay sinh tố Bếp Việt 600W được bảo hành 24 tháng" in replies(decision)


async def test_general_warranty_question_still_gets_the_policy(engine):
    decision = await engine.handle(turn("bảo hành bao lâu vậy shop"))
    assert decision.handled_by == "faq.answer_faq"
    assert "12 tháng" in replies(decision)


@pytest.mark.parametrize("text", ["giá nồi chiên bao nhiêu", "gia noi chien bao nhieu", "nckd giá bn v shop"])
async def test_price_comes_from_the_catalog(engine, text):
    decision = await engine.handle(turn(text))
    assert decision.nlu.intent.name == "ask_price"
    assert "Nồi chiên không dầu Bếp Việt 5.5L đang có giá 1.990.000đ" in replies(decision)


async def test_price_in_english(engine):
    decision = await engine.handle(turn("how much is the air fryer?"))
    assert decision.locale == "en"
    assert "Bếp Việt 5.5L air fryer costs 1,990,000 VND" in replies(decision)


@pytest.mark.parametrize("text", ["shop có bán tủ lạnh không", "shop co ban tu lanh khong"])
async def test_a_product_not_sold_gets_an_honest_no_with_what_is_sold(engine, text):
    decision = await engine.handle(turn(text))
    text_out = replies(decision)
    assert decision.handled_by == "products.answer_product_question"
    assert "chưa bán tủ lạnh" in text_out
    assert "Nồi cơm điện Bếp Việt 1.8L" in text_out and "Ấm siêu tốc Bếp Việt 1.7L" in text_out
    assert "1900" not in text_out  # not the hotline answer


async def test_a_product_no_entity_names_is_quoted_from_the_question(engine):
    decision = await engine.handle(turn("shop có bán xe đạp không"))
    assert "chưa bán xe đạp" in replies(decision)


async def test_english_question_about_a_product_not_sold(engine):
    decision = await engine.handle(turn("do you sell fridges?"))
    assert decision.locale == "en"
    assert "we don't sell fridges" in replies(decision)
    assert "Bếp Việt 1.8L electric rice cooker" in replies(decision)


async def test_stock_is_answered_when_the_catalog_has_it(engine):
    in_stock = await engine.handle(turn("nồi chiên còn hàng không shop", key="c:stock"))
    assert "còn 12 sản phẩm" in replies(in_stock)
    sold_out = await engine.handle(turn("may xay con hang ko", key="c:stock2"))
    assert "tạm hết hàng" in replies(sold_out) and "Máy xay sinh tố" in replies(sold_out)


async def test_a_catalog_without_stock_or_price_says_only_what_it_knows(models):  # noqa: F811
    shop = NullShop(catalog=[ProductView(sku="TV-43", name="Tivi thông minh Sao Mai 43 inch",
                                         name_en="Sao Mai 43 inch smart TV", warranty_months=24)])
    engine = make_engine(models, shop)
    sold = await engine.handle(turn("shop có bán tivi thông minh không"))
    assert "Dạ có ạ, shop có bán Tivi thông minh Sao Mai 43 inch." in replies(sold)
    price = await engine.handle(turn("tivi thông minh giá bao nhiêu", key="c:2"))
    assert "nhắn nhân viên" in replies(price)


async def test_without_a_catalog_a_product_question_offers_a_person(models):  # noqa: F811
    engine = make_engine(models, NullShop())
    decision = await engine.handle(turn("giá nồi chiên bao nhiêu"))
    assert decision.handled_by == "products.answer_product_question"
    assert "chuyển cho nhân viên" in replies(decision)
    assert (await engine.state_store.load("conversation:1"))["awaiting"] == "offer_handoff"


async def test_a_product_question_mid_flow_is_answered_and_the_flow_resumes(engine):
    asked = await engine.handle(turn("mình muốn kiểm tra bảo hành máy", key="c:mid"))
    assert "serial" in replies(asked).lower() or "mã đơn" in replies(asked).lower()
    question = replies(asked)
    decision = await engine.handle(turn("à mà giá nồi chiên bao nhiêu vậy", key="c:mid"))
    assert decision.handled_by == "products.answer_product_question"
    assert "1.990.000đ" in decision.replies[0].text
    assert decision.replies[-1].text == question  # the warranty flow's question, asked again
    state = await engine.state_store.load("c:mid")
    assert state["awaiting"] == "lookup_reference"
    assert state["lookup"]["intent"] == "check_warranty_status"
    resumed = await engine.handle(turn("SN100001", key="c:mid"))
    assert resumed.handled_by == "order_answers.reference_given"


async def test_english_product_question_mid_flow(engine):
    await engine.handle(turn("where is my order?", key="c:en"))
    decision = await engine.handle(turn("how long is the warranty on the blender?", key="c:en"))
    assert "Bếp Việt 600W blender has a 24-month warranty" in decision.replies[0].text
    assert "order code" in decision.replies[-1].text

"""What the broadened training data and FAQ answer, through the real engine and trained model:
deposits and freeship, usage questions about products beyond the kitchen range, scores out of ten."""

from __future__ import annotations

import pytest

from tests.bot.test_engine import engine, models, turn  # noqa: F401 (the engine on the trained model)


def replies(decision) -> str:
    return "\n".join(reply.text for reply in decision.replies)


@pytest.mark.parametrize("text", ["mua có phải đặt cọc trước không shop", "coc truoc bao nhieu vay ad"])
async def test_a_deposit_question_gets_the_deposit_answer(engine, text):  # noqa: F811
    decision = await engine.handle(turn(text))
    assert decision.nlu.intent.name == "ask_payment"
    assert "cọc 10%" in replies(decision)


async def test_a_deposit_question_in_english(engine):  # noqa: F811
    decision = await engine.handle(turn("Do I have to pay a deposit?"))
    assert decision.locale == "en" and "10% deposit" in replies(decision)


@pytest.mark.parametrize("text", ["đơn bao nhiêu thì được freeship vậy", "fs ko shop"])
async def test_a_freeship_question_gets_the_delivery_fee_answer(engine, text):  # noqa: F811
    decision = await engine.handle(turn(text))
    assert "miễn phí giao hàng cho đơn từ 500.000đ" in replies(decision)


async def test_a_usage_question_about_headphones_gets_the_general_guide_not_a_rice_cooker(engine):  # noqa: F811
    decision = await engine.handle(turn("tai nghe bluetooth ghép với máy tính bảng kiểu gì vậy"))
    assert decision.nlu.intent.name == "product_usage"
    assert "sách hướng dẫn" in replies(decision) and "gạo" not in replies(decision)


async def test_a_defect_of_a_laptop_is_taken_as_a_complaint(engine):  # noqa: F811
    decision = await engine.handle(turn("laptop mua ở shop bật lên cứ tự tắt"))
    assert decision.nlu.intent.name == "report_defect"


@pytest.mark.parametrize(("text", "stars"), [("9/10 nha shop", "5"), ("cho 8 điểm", "4"), ("10 điểm", "5")])
async def test_a_score_out_of_ten_is_a_rating_in_stars(engine, text, stars):  # noqa: F811
    decision = await engine.handle(turn(text))
    assert decision.nlu.intent.name == "give_rating"
    assert [e.value for e in decision.nlu.entities if e.entity == "rating"] == [stars]

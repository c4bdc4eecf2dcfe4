"""The bot and what comes with a message: photos and videos as evidence in the defect and complaint
flows, a photo or sticker on its own, a shared contact (phone) and a shared location (address).
With the real trained model and the shipped texts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot import ConversationEngine, Knowledge, Responses, Turn
from bot.context import Services
from bot.ports import CustomerView, NullShop, OrderView
from bot.state import MemoryStateStore
from connectors.base import Attachment
from tests.bot.test_engine import models  # noqa: F401 (the module-scoped trained model)
from tests.conftest import ROOT

PHOTO = Attachment(kind="image", file_id="AgAD-1", name="noi-com-hong.jpg", mime_type="image/jpeg")
SECOND_PHOTO = Attachment(kind="image", file_id="AgAD-2", mime_type="image/jpeg")
VIDEO = Attachment(kind="video", file_id="BAAD-1", name="clip.mp4", mime_type="video/mp4")
STICKER = Attachment(kind="sticker", file_id="CAAD-1")
IN_TRANSIT = OrderView(code="DH100002", phone="0912345678", status="in_transit", items=("Nồi chiên không dầu",))


class Customers:
    """The helpdesk's customer records as the bot sees them, in memory."""

    def __init__(self) -> None:
        self.verified: list[tuple[int, str]] = []

    async def link_verified_phone(self, customer_id: int, phone: str) -> None:
        self.verified.append((customer_id, phone))

    async def handoff_eta(self, priority: str, locale: str) -> str:
        return "trong khoảng 5 phút" if locale == "vi" else "within about 5 minutes"

    async def pending_rating_subject(self, customer_id: int) -> str | None:
        return None


@pytest.fixture
def customers() -> Customers:
    return Customers()


@pytest.fixture
def engine(models, customers):  # noqa: F811
    return ConversationEngine(
        parser=models,
        responses=Responses.load(ROOT / "data" / "bot"),
        knowledge=Knowledge.load(ROOT / "data" / "faq"),
        state_store=MemoryStateStore(),
        template_values={"shop": "Bếp Việt Demo"},
        services=Services(shop=NullShop(orders={"DH100002": IN_TRANSIT}), customers=customers),
    )


def turn(text: str = "", *attachments: Attachment, key: str = "conversation:1") -> Turn:
    return Turn(conversation_key=key, recipient_id="42", channel="telegram", text=text, attachments=attachments,
                customer=CustomerView(id=7))


def said(decision) -> str:
    return "\n".join(reply.text for reply in decision.replies)


async def test_a_defect_photo_with_the_order_goes_into_the_handoff_note_and_is_acknowledged(engine):
    decision = await engine.handle(turn("nồi cơm điện đơn DH100001 bị hỏng, bấm nút không lên đèn", PHOTO))
    assert decision.escalation is not None and decision.escalation.priority == "high"
    assert decision.escalation.reason == "report_defect"
    assert "[+ 1 ảnh: noi-com-hong.jpg]" in decision.escalation.note
    assert "đã nhận được 1 ảnh" in said(decision)


async def test_evidence_from_both_turns_of_a_defect_report_is_named_in_the_note(engine):
    first = await engine.handle(turn("nồi cơm điện mới mua đã bị hỏng, bấm nút không lên đèn", PHOTO))
    assert first.escalation is None
    assert "đã nhận được 1 ảnh" in said(first) and "mã đơn hàng" in said(first)
    second = await engine.handle(turn("đơn DH100001, cắm điện vào không có phản ứng gì", SECOND_PHOTO, VIDEO))
    assert second.escalation is not None and second.escalation.reason == "report_defect"
    assert "[+ 2 ảnh, 1 video: noi-com-hong.jpg, clip.mp4]" in second.escalation.note
    assert "DH100001" in second.escalation.note
    assert "1 ảnh, 1 video" in said(second)


async def test_a_delivery_complaint_in_english_acknowledges_the_photo_in_english(engine):
    decision = await engine.handle(turn("The parcel arrived crushed and the box is dented, order DH100002", PHOTO))
    assert decision.escalation is not None and decision.escalation.priority == "high"
    assert "received the 1 photo" in said(decision)
    # the agents' note is in the shop's language, whatever the customer's
    assert "[+ 1 ảnh: noi-com-hong.jpg]" in decision.escalation.note


async def test_a_photo_without_text_asks_what_it_is_about_and_is_kept_for_the_complaint(engine):
    photo_only = await engine.handle(turn("", PHOTO))
    assert photo_only.escalation is None
    assert "đã nhận được 1 ảnh" in said(photo_only) and "vấn đề gì" in said(photo_only)
    assert "chưa hiểu" not in said(photo_only)
    complaint = await engine.handle(turn("nồi cơm điện mới mua đã bị hỏng, bấm nút không lên đèn"))
    assert complaint.escalation is None and "1 ảnh" in said(complaint)
    details = await engine.handle(turn("đơn DH100001, cắm điện vào không có phản ứng gì"))
    assert details.escalation is not None
    assert "[+ 1 ảnh: noi-com-hong.jpg]" in details.escalation.note


async def test_photos_and_stickers_do_not_count_as_misunderstandings(engine):
    first = await engine.handle(turn("xyzzy qwerty plugh"))
    assert "chưa hiểu" in said(first)
    for attachment in (STICKER, PHOTO, STICKER):
        decision = await engine.handle(turn("", attachment))
        assert decision.escalation is None, decision.replies
        assert "chưa hiểu" not in said(decision)
    state = await engine.state_store.load("conversation:1")
    assert state["fallbacks"] == 1  # neither reset nor raised
    # the count still works: a second misunderstanding hands over
    second = await engine.handle(turn("blorp snarf wibble"))
    assert second.escalation is not None and second.escalation.reason == "bot_failed"


async def test_a_sticker_gets_a_friendly_question(engine):
    decision = await engine.handle(turn("", STICKER))
    assert "hỗ trợ gì" in said(decision) or "nhắn shop" in said(decision), said(decision)
    assert decision.handled_by == "media.acknowledge_media"


async def test_a_shared_contact_verifies_the_phone_like_a_typed_one(engine, customers):
    asked = await engine.handle(turn("đơn DH100002 tới đâu rồi ạ"))
    assert "số điện thoại" in said(asked)
    contact = Attachment(kind="contact", phone="+84 912 345 678", name="Lan")
    answered = await engine.handle(turn("", contact))
    assert "đang trên đường giao" in said(answered)
    assert customers.verified == [(7, "0912345678")]
    state = await engine.state_store.load("conversation:1")
    assert state["verified_phone"] == "0912345678"


async def test_a_shared_contact_with_another_phone_reveals_nothing(engine, customers):
    await engine.handle(turn("đơn DH100002 tới đâu rồi ạ"))
    answered = await engine.handle(turn("", Attachment(kind="contact", phone="84999999999")))
    assert "chưa xác minh" in said(answered)
    assert "đang trên đường giao" not in said(answered)
    assert customers.verified == []


async def test_a_contact_shared_first_is_used_when_the_order_lookup_needs_a_phone(engine, customers):
    shared = await engine.handle(turn("", Attachment(kind="contact", phone="84912345678")))
    assert "0912345678" in said(shared)
    answered = await engine.handle(turn("đơn DH100002 tới đâu rồi ạ"))
    assert "đang trên đường giao" in said(answered)
    assert customers.verified == [(7, "0912345678")]


async def test_a_shared_location_fills_the_new_delivery_address(engine):
    await engine.handle(turn("mình muốn đổi địa chỉ giao hàng đơn DH100002"))
    asked = await engine.handle(turn("0912345678"))
    assert "địa chỉ giao hàng mới" in said(asked), said(asked)
    location = Attachment(kind="location", latitude=10.776889, longitude=106.700806)
    ticket = await engine.handle(turn("", location))
    assert ticket.escalation is not None and ticket.escalation.reason == "change_request"
    assert "DH100002" in ticket.escalation.note
    assert "10.776889,106.700806" in ticket.escalation.note
    assert "openstreetmap.org/?mlat=10.776889&mlon=106.700806" in ticket.escalation.note


async def test_a_location_given_as_a_geo_uri_is_read_too(engine):
    decision = await engine.handle(turn("", Attachment(kind="location", url="geo:21.028511,105.804817")))
    assert "vị trí" in said(decision)
    state = await engine.state_store.load("conversation:1")
    assert "21.028511,105.804817" in state["shared_address"]


async def test_the_bot_stays_silent_about_photos_when_a_person_owns_the_conversation(engine):
    decision = await engine.handle(Turn(conversation_key="c", recipient_id="42", channel="telegram",
                                        attachments=(PHOTO,), human_owned=True))
    assert decision.replies == [] and decision.escalation is None


async def test_a_photo_sent_with_a_greeting_is_kept_for_the_complaint_that_follows(engine):
    greeting = await engine.handle(turn("chào shop", PHOTO))
    assert greeting.escalation is None and greeting.handled_by == "smalltalk.answer_smalltalk"
    complaint = await engine.handle(turn("nồi cơm điện mới mua đã bị hỏng, bấm nút không lên đèn"))
    assert "1 ảnh" in said(complaint) and "mã đơn hàng" in said(complaint)
    details = await engine.handle(turn("đơn DH100001, cắm điện vào không có phản ứng gì"))
    assert "[+ 1 ảnh: noi-com-hong.jpg]" in details.escalation.note


async def test_held_evidence_is_capped(engine):
    for _ in range(25):
        await engine.handle(turn("", PHOTO))
    state = await engine.state_store.load("conversation:1")
    assert len(state["evidence"]) == 20


class RatingCustomers(Customers):
    """Customers with a rating request pending, recording the comments."""

    def __init__(self) -> None:
        super().__init__()
        self.comments: list[str] = []

    async def pending_rating_subject(self, customer_id: int) -> str | None:
        return "order:DH100002"

    async def record_rating(self, customer_id: int, subject: str, stars: int, comment: str | None = None) -> str:
        return "delivery"

    async def add_rating_comment(self, customer_id: int, subject: str, comment: str) -> None:
        self.comments.append(comment)


async def test_a_photo_of_what_went_wrong_after_a_low_rating_goes_with_the_escalation(models):  # noqa: F811
    customers = RatingCustomers()
    engine = ConversationEngine(parser=models, responses=Responses.load(ROOT / "data" / "bot"),
                                knowledge=Knowledge.load(ROOT / "data" / "faq"), state_store=MemoryStateStore(),
                                services=Services(customers=customers))
    asked = await engine.handle(turn("2"))
    assert "điều gì chưa tốt" in said(asked)
    feedback = await engine.handle(turn("", PHOTO))
    assert feedback.escalation is not None and feedback.escalation.reason == "low_rating"
    assert "[+ 1 ảnh: noi-com-hong.jpg]" in feedback.escalation.note
    assert "đã nhận được 1 ảnh" in said(feedback)
    assert customers.comments == []  # no empty comment stored with the rating

"""Email in, through the real app against a real dovecot (IMAP) and a real SMTP server on loopback: a
customer's reply to a care mail is threaded into their conversation by In-Reply-To/References, quoted text
cut off, stored once; an agent's reply goes back by email in the same thread; unknown senders start a
conversation of their own; a bounce (DSN) marks the address undeliverable and fails the care mail."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import unquote

import pytest
from sqlmodel import Session, col, select

from helpdesk.care.models import CareMessage
from helpdesk.care.tasks import run_due_care_messages
from helpdesk.conversations.models import Conversation, Message
from helpdesk.customers.models import ChannelIdentity, Customer
from tests.fakes.imap_server import DOVECOT, DovecotServer
from tests.fakes.smtp_server import SmtpServer
from tests.helpdesk.care.conftest import API_KEY, make_order, started

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(DOVECOT is None, reason="dovecot is not installed (Debian package dovecot-imapd)")]

KEY = {"X-Api-Key": API_KEY}
ADDRESS = "binh@example.com"


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def imap():
    with DovecotServer() as server:
        yield server


@pytest.fixture
async def mail_client(care_settings, clock, smtp, imap, trained_models_dir):
    # the bot answers the customers' mails too: it needs the NLU model
    settings = care_settings(nlu={"models_dir": trained_models_dir}, email={"smtp_url": smtp.url, "imap_url": imap.url, "from": "care@bepviet.vn",
                                    "public_base_url": "https://care.bepviet.vn", "imap_poll_interval_s": 0})
    async for client in started(settings, clock):
        yield client


def reply_to(original: EmailMessage, text: str, *, sender: str = ADDRESS, quote: bool = True) -> bytes:
    reply = EmailMessage()
    reply["From"] = f"Trần Thị Bình <{sender}>"
    reply["To"] = str(original["From"])
    reply["Subject"] = "Re: " + str(original["Subject"])
    reply["Date"] = format_datetime(original["Date"].datetime)
    reply["Message-ID"] = make_msgid(domain="example.com")
    reply["In-Reply-To"] = str(original["Message-ID"])
    reply["References"] = str(original["Message-ID"])
    quoted = "\n".join("> " + line for line in original.get_body(("plain",)).get_content().splitlines())
    body = text + (f"\n\nVào Th 2, 2 thg 3, 2026 lúc 10:00 Bếp Việt <care@bepviet.vn> đã viết:\n{quoted}\n"
                   if quote else "\n")
    reply.set_content(body)
    return bytes(reply)


async def deliver_order(client) -> None:
    make_order(client.wiring.engine)
    response = await client.post("/api/orders/DH200001/delivered", headers=KEY,
                                 json={"email": ADDRESS, "name": "Trần Thị Bình"})
    assert response.status_code == 200, response.text
    await client.settle()


def customer_texts(engine, address: str) -> list[str]:
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "email",
                                                              ChannelIdentity.external_id == address)).one()
        conversation_ids = select(Conversation.id).where(Conversation.identity_id == identity.id)
        return [m.text for m in session.exec(select(Message).where(
            col(Message.conversation_id).in_(conversation_ids), Message.direction == "in")
            .order_by(col(Message.id))).all()]


async def test_a_reply_to_a_care_mail_is_threaded_into_the_customers_conversation_once(mail_client, smtp, imap):
    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    # replied from another address of hers: the In-Reply-To, not the sender, says whose thread it is
    raw = reply_to(thank_you.message, "Nồi cơm nhà em bị lỗi E3, shop hỗ trợ giúp em với", sender="binh.work@example.org")
    imap.deliver(raw)

    assert await mail_client.wiring.mail.poll() == 1
    await mail_client.settle()
    assert customer_texts(engine, ADDRESS) == ["Nồi cơm nhà em bị lỗi E3, shop hỗ trợ giúp em với"]

    imap.deliver(raw)  # the same mail again (a second copy, a poll cut short): stored once
    assert await mail_client.wiring.mail.poll() == 0
    await mail_client.settle()
    assert len(customer_texts(engine, ADDRESS)) == 1
    assert await mail_client.wiring.mail.poll() == 0  # read mails are not read again


async def test_an_agents_reply_goes_back_by_email_in_the_same_thread(mail_client, smtp, imap):
    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    raw = reply_to(thank_you.message, "Cho em hỏi chế độ bảo hành ạ?")
    imap.deliver(raw)
    await mail_client.wiring.mail.poll()
    await mail_client.settle()
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "email")).one()
        conversation = session.exec(select(Conversation).where(Conversation.identity_id == identity.id)).one()
    before = len(smtp.received)

    admin = await mail_client.login()
    sent = await mail_client.post(f"/api/conversations/{conversation.id}/messages", headers=admin,
                                  json={"text": "Dạ sản phẩm được bảo hành 12 tháng ạ."})
    assert sent.status_code == 201, sent.text
    await mail_client.settle()

    agent_mail = smtp.received[-1].message
    assert len(smtp.received) > before and smtp.received[-1].recipients == [ADDRESS]
    assert "bảo hành 12 tháng" in agent_mail.get_body(("plain",)).get_content()
    reply = message_from_bytes(raw, policy=policy.default)
    assert agent_mail["In-Reply-To"] == reply["Message-ID"]
    assert thank_you.message["Message-ID"] in agent_mail["References"]
    assert agent_mail["Subject"].startswith("Re: ") and "DH200001" in agent_mail["Subject"]


async def test_an_unknown_sender_starts_a_new_email_conversation(mail_client, imap):
    engine = mail_client.wiring.engine
    mail = EmailMessage()
    mail["From"] = "Lê Văn Cường <cuong@example.net>"
    mail["To"] = "care@bepviet.vn"
    mail["Subject"] = "Hỏi giá nồi chiên"
    mail["Message-ID"] = make_msgid(domain="example.net")
    mail.set_content("Shop còn nồi chiên không dầu 5L không ạ?")
    imap.deliver(bytes(mail))

    assert await mail_client.wiring.mail.poll() == 1
    await mail_client.settle()
    assert customer_texts(engine, "cuong@example.net") == ["Shop còn nồi chiên không dầu 5L không ạ?"]
    with Session(engine) as session:
        assert session.exec(select(Customer).where(Customer.name == "Lê Văn Cường")).one()


def dsn_for(original: EmailMessage, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A delivery status notification (RFC 3464) the way Postfix writes one, returning the original's headers."""
    returned = "".join(f"{name}: {value}\r\n" for name, value in original.items())
    return (
        "From: MAILER-DAEMON@mx.example.com (Mail Delivery System)\r\n"
        "To: care@bepviet.vn\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: {make_msgid(domain='mx.example.com')}\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"\r\n'
        "\r\n"
        "--B0UND\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        "This is the mail system at host mx.example.com.\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n\r\n"
        "--B0UND\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.com\r\n"
        "Arrival-Date: Mon, 2 Mar 2026 10:00:05 +0700\r\n\r\n"
        f"Final-Recipient: rfc822; {ADDRESS}\r\n"
        f"Original-Recipient: rfc822;{ADDRESS}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{ADDRESS}>: Recipient address rejected: User unknown in virtual "
        "mailbox table\r\n\r\n"
        "--B0UND\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"{returned}\r\n"
        "--B0UND--\r\n"
    ).encode()


async def test_a_bounce_marks_the_address_undeliverable_and_fails_the_care_mail(mail_client, smtp, imap, clock):
    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    imap.deliver(dsn_for(thank_you.message))

    assert await mail_client.wiring.mail.poll() == 0
    with Session(engine) as session:
        identity = session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "email")).one()
        assert identity.reachable is False and "5.1.1" in identity.unreachable_reason
        rows = {care.kind: care for care in session.exec(select(CareMessage)).all()}
    assert rows["thank_you"].status == "failed" and "bounced" in rows["thank_you"].reason
    assert "User unknown" in rows["thank_you"].reason
    assert all(rows[kind].status == "skipped" for kind in ("rating_request", "usage_tips", "check_in"))
    clock.advance(days=8)
    await run_due_care_messages(mail_client.wiring.care)
    assert len(smtp.received) == 1  # nothing more goes to the address


async def test_a_delayed_notice_changes_nothing(mail_client, smtp, imap):
    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    imap.deliver(dsn_for(thank_you.message, action="delayed", status="4.4.1"))
    await mail_client.wiring.mail.poll()
    with Session(engine) as session:
        assert session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == "email")).one().reachable
        assert session.exec(select(CareMessage).where(CareMessage.kind == "thank_you")).one().status == "sent"


async def test_a_file_attached_to_a_reply_is_stored_through_the_attachments_service(mail_client, smtp, imap):
    from io import BytesIO

    from PIL import Image

    from helpdesk.attachments.models import Attachment

    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    photo = BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(photo, format="PNG")
    reply = message_from_bytes(reply_to(thank_you.message, "Ảnh lỗi đây ạ", quote=False), policy=policy.default)
    reply.add_attachment(photo.getvalue(), maintype="image", subtype="png", filename="loi-e3.png")
    imap.deliver(bytes(reply))

    assert await mail_client.wiring.mail.poll() == 1
    await mail_client.settle()
    with Session(engine) as session:
        [stored] = session.exec(select(Attachment)).all()
        message = session.get(Message, stored.message_id)
    assert (stored.kind, stored.status, stored.name) == ("image", "stored", "loi-e3.png")
    assert (stored.width, stored.height) == (40, 30)
    assert message.text == "Ảnh lỗi đây ạ"


async def test_the_mailto_unsubscribe_of_a_care_mail_opts_the_customer_out(mail_client, smtp, imap):
    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    mailto = thank_you.message["List-Unsubscribe"].split(", ")[0].strip("<>")
    subject = unquote(mailto.split("?subject=", 1)[1])
    request = EmailMessage()  # what a mail client sends for the mailto: link
    request["From"] = ADDRESS
    request["To"] = "care@bepviet.vn"
    request["Subject"] = subject
    request["Message-ID"] = make_msgid(domain="example.com")
    request.set_content("This is an unsubscribe request.")
    imap.deliver(bytes(request))

    assert await mail_client.wiring.mail.poll() == 0
    with Session(engine) as session:
        assert session.exec(select(Customer)).one().care_opted_out
        statuses = {care.kind: care.status for care in session.exec(select(CareMessage)).all()}
    assert statuses["rating_request"] == "cancelled" and statuses["thank_you"] == "sent"

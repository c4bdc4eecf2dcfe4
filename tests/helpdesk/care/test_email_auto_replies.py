"""Mails nobody typed, and replies with nothing new, against a real dovecot (IMAP) and SMTP on loopback:
an out-of-office answer (Auto-Submitted, or only Precedence: auto_reply as older Exchange sends) and a reply
that only quotes the care mail neither reopen nor escalate the customer's conversation, store no
customer message and get no answer from the bot."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from helpdesk.conversations.models import Conversation, Message
from tests.fakes.imap_server import DOVECOT
from tests.helpdesk.care.test_email_in import (  # noqa: F401  (fixtures)
    ADDRESS, customer_texts, deliver_order, imap, mail_client, reply_to, smtp,
)

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(DOVECOT is None, reason="dovecot is not installed (Debian package dovecot-imapd)")]


def out_of_office(original, *headers: tuple[str, str]) -> bytes:
    """An out-of-office answer to ``original``, with the marks of the responder that wrote it."""
    from email import message_from_bytes, policy

    mail = message_from_bytes(reply_to(original, "Tôi đang nghỉ phép đến 10/3, sẽ trả lời sau.", quote=False),
                              policy=policy.default)
    mail.replace_header("Subject", "Tự động trả lời: " + str(original["Subject"]))
    for name, value in headers:
        mail[name] = value
    return bytes(mail)


def snapshot(engine) -> tuple[list[tuple[str, object, str | None]], int]:
    """Each conversation's (state, escalated_at, escalation reason), and how many messages there are."""
    with Session(engine) as session:
        conversations = [(c.state, c.escalated_at, c.escalation_reason)
                         for c in session.exec(select(Conversation).order_by(Conversation.id)).all()]
        return conversations, len(session.exec(select(Message)).all())


@pytest.mark.parametrize("resolved", [True, False], ids=["resolved", "open"])
async def test_auto_replies_and_quote_only_replies_neither_reopen_escalate_nor_get_an_answer(
        mail_client, smtp, imap, resolved):
    engine = mail_client.wiring.engine
    await deliver_order(mail_client)
    [thank_you] = smtp.received
    imap.deliver(reply_to(thank_you.message, "Cảm ơn shop, nồi dùng tốt ạ"))
    assert await mail_client.wiring.mail.poll() == 1
    await mail_client.settle()
    if resolved:
        with Session(engine) as session:
            conversation = session.exec(select(Conversation)).one()
            conversation.state = "resolved"
            session.add(conversation)
            session.commit()
    before, mails = snapshot(engine), len(smtp.received)

    imap.deliver(out_of_office(thank_you.message, ("Auto-Submitted", "auto-replied")))
    imap.deliver(out_of_office(thank_you.message, ("Precedence", "auto_reply")))
    imap.deliver(out_of_office(thank_you.message, ("X-Autorespond", "Tôi đang nghỉ phép")))
    imap.deliver(reply_to(thank_you.message, ""))  # only the quoted care mail, nothing typed
    assert await mail_client.wiring.mail.poll() == 0
    await mail_client.settle()

    assert snapshot(engine) == before
    assert len(smtp.received) == mails  # the bot answered none of them
    assert customer_texts(engine, ADDRESS) == ["Cảm ơn shop, nồi dùng tốt ạ"]
    if resolved:
        assert before[0][0][0] == "resolved"
    assert await mail_client.wiring.mail.poll() == 0  # all four were taken (seen), not left to read again

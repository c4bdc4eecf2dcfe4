"""The email channel's threads: which customer address a received mail belongs to (by the Message-IDs it
answers, else its sender), and what a reply to an address answers. Nothing here commits; callers own the
transaction. What a bounce means for care is care's (``helpdesk/care/mail_bounce.py``)."""

from __future__ import annotations

import logging
from sqlmodel import Session, col, select

from connectors.email_in import ParsedMail
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.customers.service import identify_sender
from helpdesk.mail.models import EmailRecord

log = logging.getLogger(__name__)

EMAIL = "email"
#: how many earlier Message-IDs a reply's References carries
REFERENCES_KEPT = 10


def record_mail(session: Session, identity: ChannelIdentity, message_id: str, direction: str, subject: str,
                care_id: int | None = None) -> EmailRecord:
    """Remember one mail of the identity's thread."""
    row = EmailRecord(message_id=message_id[:255], identity_id=identity.id, direction=direction,
                      subject=subject[:500], care_id=care_id)
    session.add(row)
    session.flush()
    return row


def email_identity(session: Session, address: str) -> ChannelIdentity | None:
    return session.exec(select(ChannelIdentity).where(ChannelIdentity.channel == EMAIL,
                                                      ChannelIdentity.external_id == address)).first()


def thread_identity(session: Session, mail: ParsedMail) -> ChannelIdentity:
    """The email identity whose conversation the mail continues: the thread of a Message-ID it answers
    (In-Reply-To, then References, newest first), else the sender's own address when it is known (an
    email identity, or a customer with that email), else a new customer and identity for the sender."""
    answered = list(mail.in_reply_to) + list(reversed(mail.references))
    if answered:
        rows = session.exec(select(EmailRecord).where(col(EmailRecord.message_id).in_(answered))).all()
        by_id = {row.message_id: row for row in rows}
        for message_id in answered:
            if message_id in by_id:
                return session.get(ChannelIdentity, by_id[message_id].identity_id)
    identity = email_identity(session, mail.from_address)
    if identity is not None:
        return identity
    known = session.exec(select(Customer).where(Customer.email == mail.from_address,
                                                col(Customer.merged_into_id).is_(None))).first()
    if known is not None:
        identity = ChannelIdentity(customer_id=known.id, channel=EMAIL, external_id=mail.from_address,
                                   display_name=mail.from_name or None)
        session.add(identity)
        session.flush()
        return identity
    _customer, identity = identify_sender(session, EMAIL, mail.from_address, mail.from_name or None)
    return identity


def already_recorded(session: Session, message_id: str, direction: str = "in") -> bool:
    """Whether the mail was taken in before (the poll that stored it stopped before marking it read)."""
    return session.exec(select(EmailRecord.id).where(EmailRecord.message_id == message_id[:255],
                                                     EmailRecord.direction == direction)).first() is not None


def reply_headers(session: Session, address: str) -> tuple[str, str | None, list[str]]:
    """(subject, Message-ID answered, References) for a reply to ``address``: the thread's newest mail
    from the customer (else the newest mail to them), and the thread's recent Message-IDs, oldest first."""
    identity = email_identity(session, address)
    if identity is None:
        return "", None, []
    rows = session.exec(select(EmailRecord).where(EmailRecord.identity_id == identity.id)
                        .order_by(col(EmailRecord.id).desc()).limit(REFERENCES_KEPT)).all()
    if not rows:
        return "", None, []
    answering = next((row for row in rows if row.direction == "in"), rows[0])
    subject = next((row.subject for row in rows if row.subject), "")
    return subject, answering.message_id, [row.message_id for row in reversed(rows)]


def record_sent(session: Session, address: str, message_id: str, subject: str) -> None:
    """Remember a reply the shop sent to ``address``."""
    identity = email_identity(session, address)
    if identity is not None:
        record_mail(session, identity, message_id, "out", subject)

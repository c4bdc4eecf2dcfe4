"""What a bounce (a delivery status notification read from the mailbox) means for care: a permanent
failure (Action: failed, Status 5.x.x) marks the address undeliverable, so nothing is sent to it again and
what waits to be retried there stops; the care mail that bounced is marked failed with the reason, and its
step falls back to the next channel of the care order where one reaches the customer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlmodel import Session, select

from connectors.email_in import Bounce
from helpdesk.care.channels import fall_back_to_next_channel
from helpdesk.care.models import CareMessage, CareStatus
from helpdesk.care.service import CarePolicy
from helpdesk.customers.models import ChannelIdentity
from helpdesk.mail.models import EmailRecord
from helpdesk.mail.service import email_identity
from helpdesk.shop.models import Order

log = logging.getLogger(__name__)

#: other senders of mail (campaigns) that mark their own bounced mail: (session, bounce, reason)
BOUNCE_READERS: list[Callable[[Session, Bounce, str], None]] = []


def record_bounce(session: Session, bounce: Bounce, *, policy: CarePolicy, now: datetime) -> str:
    """Take in a bounce; what it was: "undeliverable", "delayed" (a passing failure, nothing changes) or
    "unknown" (not about a mail CareDesk sent)."""
    record = None
    if bounce.original_message_id:
        record = session.exec(select(EmailRecord).where(
            EmailRecord.message_id == bounce.original_message_id, EmailRecord.direction == "out")).first()
    identities: list[ChannelIdentity] = []
    if record is not None:
        identities.append(session.get(ChannelIdentity, record.identity_id))
    for address in bounce.recipients:
        found = email_identity(session, address)
        if found is not None and all(found.id != other.id for other in identities):
            identities.append(found)
    if not identities:
        log.info("a bounce of a mail CareDesk did not send (%s); ignored", bounce.original_message_id)
        return "unknown"
    if not bounce.permanent:
        return "delayed"
    reason = f"the address bounced: {bounce.status} {bounce.diagnostic}".strip()[:400]
    for read in BOUNCE_READERS:
        read(session, bounce, reason)
    for identity in identities:
        identity.reachable, identity.unreachable_reason = False, reason
        session.add(identity)
        waiting = session.exec(select(CareMessage).where(CareMessage.identity_id == identity.id,
                                                         CareMessage.status == CareStatus.scheduled)).all()
        for care in waiting:  # a retry or a later step at the address: the next channel, or nothing
            _stop(session, care, identity, CareStatus.skipped, reason, policy, now)
    if record is not None and record.care_id is not None:
        care = session.get(CareMessage, record.care_id)
        if care is not None and care.status in (CareStatus.sent, CareStatus.delivered):
            _stop(session, care, identities[0], CareStatus.failed, reason, policy, now)
    return "undeliverable"


def _stop(session: Session, care: CareMessage, identity: ChannelIdentity, status: str, reason: str,
          policy: CarePolicy, now: datetime) -> None:
    order = session.get(Order, care.order_id)
    note = fall_back_to_next_channel(session, care, order, identity, policy.channels, now,
                                     policy.first_allowed(max(now, care.due_at)))
    care.status, care.reason, care.updated_at = status, (reason + note)[:500], now
    session.add(care)
    session.flush()

"""How reminders from product data do: per type (maintenance, warranty expiry), how many were sent,
read (where the channel reports it: a ZNS receipt), replied to (the customer wrote on the same
identity within ``REPLY_WINDOW``), and how many were skipped or cancelled, over a period of due dates."""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from helpdesk.care.models import CareMessage, CareStatus
from helpdesk.care.reminders import MAINTENANCE, REPLY_WINDOW, WARRANTY_EXPIRY, reminder_type
from helpdesk.conversations.models import Conversation, Message

REMINDER_TYPES = ("maintenance", "warranty_expiry")
SENT = (CareStatus.sent, CareStatus.delivered)


def reminder_summary(session: Session, start: datetime, end: datetime) -> dict[str, dict[str, float | int | None]]:
    """Counts per reminder type for reminders due in [start, end)."""
    rows = session.exec(select(CareMessage).where(
        or_(col(CareMessage.kind).startswith(f"{MAINTENANCE}:"), col(CareMessage.kind).startswith(f"{WARRANTY_EXPIRY}:")),
        CareMessage.due_at >= start, CareMessage.due_at < end)).all()
    sent = [r for r in rows if r.status in SENT and r.sent_at is not None]
    # the customers' messages on those identities after the first reminder went, by identity, in time order
    inbound: dict[int, list[datetime]] = defaultdict(list)
    if sent:
        since, until = min(r.sent_at for r in sent), max(r.sent_at for r in sent) + REPLY_WINDOW
        for identity_id, at in session.exec(
                select(Conversation.identity_id, Message.created_at)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(col(Conversation.identity_id).in_({r.identity_id for r in sent}), Message.author == "customer",
                       Message.created_at > since, Message.created_at <= until)
                .order_by(Message.created_at)):
            inbound[identity_id].append(at)
    summary = {name: {"scheduled": 0, "sent": 0, "read": 0, "replied": 0, "skipped": 0, "cancelled": 0}
               for name in REMINDER_TYPES}
    for row in rows:
        counts = summary[reminder_type(row.kind)]
        if row.status in SENT and row.sent_at is not None:
            counts["sent"] += 1
            counts["read"] += row.delivered_at is not None
            times = inbound.get(row.identity_id, [])
            after = bisect_right(times, row.sent_at)
            counts["replied"] += after < len(times) and times[after] <= row.sent_at + REPLY_WINDOW
        elif row.status in (CareStatus.scheduled, CareStatus.skipped, CareStatus.cancelled):
            counts[str(row.status)] += 1
    for counts in summary.values():
        counts["reply_rate"] = round(counts["replied"] / counts["sent"], 4) if counts["sent"] else None
    return summary

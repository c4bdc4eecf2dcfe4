"""Finding and creating customers from the identities they write with."""

from __future__ import annotations

from sqlmodel import Session, col, select

from helpdesk.agents.models import Agent
from helpdesk.agents.teams import visibility_filter
from helpdesk.audit import service as audit
from helpdesk.conversations.models import Conversation
from helpdesk.core.db import utcnow
from helpdesk.core.errors import BadRequest, Conflict, NotFound
from helpdesk.customers.models import ChannelIdentity, Customer, CustomerMerge
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order


def identify_sender(
    session: Session, channel: str, external_id: str, display_name: str | None = None
) -> tuple[Customer, ChannelIdentity]:
    """The customer behind a channel identity, creating both on first contact."""
    identity = session.exec(
        select(ChannelIdentity).where(ChannelIdentity.channel == channel, ChannelIdentity.external_id == external_id)
    ).first()
    if identity is None:
        customer = Customer(name=display_name)
        session.add(customer)
        session.flush()
        identity = ChannelIdentity(customer_id=customer.id, channel=channel, external_id=external_id,
                                   display_name=display_name)
        session.add(identity)
        session.flush()
    else:
        customer = session.get(Customer, identity.customer_id)
        while customer.merged_into_id is not None:  # a merged customer speaks as the one it merged into
            customer = session.get(Customer, customer.merged_into_id)
        if display_name and identity.display_name != display_name:
            identity.display_name = display_name
    identity.last_inbound_at = utcnow()
    return customer, identity


def normalise_phone(raw: str) -> str | None:
    """A Vietnamese mobile number as 10 digits starting with 0 (``+84 90 123 4567`` -> ``0901234567``)."""
    digits = "".join(char for char in raw if char.isdigit())
    if digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if len(digits) == 9 and not digits.startswith("0"):
        digits = "0" + digits
    if len(digits) == 10 and digits.startswith("0"):
        return digits
    return None


def primary_customer(session: Session, customer: Customer) -> Customer:
    """The customer a (possibly merged) record now speaks as."""
    seen = set()
    while customer.merged_into_id is not None and customer.id not in seen:
        seen.add(customer.id)
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def _moved_models() -> dict[str, type]:
    """What a merge moves to the primary, by the key it is recorded under."""

    return {"identities": ChannelIdentity, "conversations": Conversation, "orders": Order, "ratings": Rating}


#: the customer's own fields a merge fills in on the primary when the primary has none
COPIED_FIELDS = ("name", "phone", "email")


def merged_customer_ids(session: Session, customer: Customer) -> list[int]:
    """The customer's id and those of every record merged into it, directly or through another."""
    ids, frontier = [customer.id], [customer.id]
    while frontier:
        frontier = [i for i in session.exec(select(Customer.id).where(col(Customer.merged_into_id).in_(frontier)))
                    if i not in ids]
        ids.extend(frontier)
    return ids


def may_see_customer(session: Session, agent: Agent, customer: Customer) -> bool:
    """Whether the agent may see this customer: admins always, others when they may see at least one
    of the customer's conversations (after following merges)."""

    condition = visibility_filter(session, agent, Conversation)
    if condition is None:
        return True
    ids = merged_customer_ids(session, primary_customer(session, customer))
    return session.exec(select(Conversation.id).where(col(Conversation.customer_id).in_(ids), condition)
                        .limit(1)).first() is not None


def visible_customer(session: Session, agent: Agent, customer_id: int) -> Customer:
    """The customer (following merges) if the agent may see it; NotFound alike for "no such customer"
    and "not yours", so that ids cannot be probed."""
    customer = session.get(Customer, customer_id)
    if customer is None or not may_see_customer(session, agent, customer):
        raise NotFound(f"customer {customer_id} not found")
    return primary_customer(session, customer)


def merge_customers(
    session: Session, primary: Customer, secondary: Customer, *, actor_type: str = "system",
    actor_id: int | None = None,
) -> Customer:
    """Fold ``secondary`` into ``primary``: identities, conversations, orders and ratings move over, and
    what moved is recorded so that :func:`split_customer` can undo it."""

    primary, secondary = primary_customer(session, primary), primary_customer(session, secondary)
    if primary.id == secondary.id:
        raise BadRequest("cannot merge a customer into itself")
    moved: dict[str, list[int]] = {}
    for key, model in _moved_models().items():
        rows = session.exec(select(model).where(model.customer_id == secondary.id).order_by(model.id)).all()
        for row in rows:
            row.customer_id = primary.id
        moved[key] = [row.id for row in rows]
    copied: dict[str, list] = {}
    for field in COPIED_FIELDS:
        if getattr(primary, field) is None and getattr(secondary, field) is not None:
            copied[field] = [None, getattr(secondary, field)]
            setattr(primary, field, getattr(secondary, field))
    # Verification belongs to a number: the primary's own unverified number stays unverified.
    if secondary.phone_verified and not primary.phone_verified and primary.phone == secondary.phone:
        copied["phone_verified"] = [False, True]
        primary.phone_verified = True
    secondary.merged_into_id = primary.id
    record = CustomerMerge(primary_id=primary.id, merged_id=secondary.id, moved=moved, copied=copied,
                           actor_type=actor_type, actor_id=actor_id)
    session.add(record)
    session.flush()
    audit.record(session, "customers_merged", "customer", primary.id, actor_type=actor_type, actor_id=actor_id,
                 merged_customer_id=secondary.id, merge_id=record.id)
    session.flush()
    return primary


def find_merge(session: Session, primary: Customer, *, merge_id: int | None = None,
               merged_customer_id: int | None = None) -> CustomerMerge:
    """The merge into ``primary`` named by its id or by the customer it folded in (its latest)."""
    query = select(CustomerMerge).where(CustomerMerge.primary_id == primary.id)
    if merge_id is not None:
        query = query.where(CustomerMerge.id == merge_id)
    elif merged_customer_id is not None:
        query = query.where(CustomerMerge.merged_id == merged_customer_id)
    else:
        raise BadRequest("name the merge (merge_id) or the merged customer (customer_id)")
    record = session.exec(query.order_by(col(CustomerMerge.id).desc())).first()
    if record is None:
        raise NotFound(f"customer {primary.id} has no such merge")
    return record


def split_customer(
    session: Session, record: CustomerMerge, *, actor_type: str = "agent", actor_id: int | None = None,
) -> Customer:
    """Undo a merge: the rows it moved that are still on the primary go back, the fields it copied are
    restored where nobody changed them since, and the merged customer stands on its own again."""

    if record.split_at is not None:
        raise Conflict(f"merge {record.id} was split already")
    primary, merged = session.get(Customer, record.primary_id), session.get(Customer, record.merged_id)
    if primary.merged_into_id is not None:
        # What this merge moved has travelled on with the primary; undo the later merge first.
        raise Conflict(f"customer {primary.id} was itself merged into customer {primary.merged_into_id}; "
                       "split that merge first")
    if merged.merged_into_id != primary.id:
        raise Conflict(f"customer {merged.id} is not merged into customer {primary.id}")
    returned: dict[str, list[int]] = {}
    for key, model in _moved_models().items():
        ids = record.moved.get(key) or []
        rows = session.exec(select(model).where(col(model.id).in_(ids), model.customer_id == primary.id)).all()
        for row in rows:
            row.customer_id = merged.id
        returned[key] = sorted(row.id for row in rows)
    # Conversations the merged customer opened since, on an identity that goes back, go back with it
    # (with their ratings): they are that customer's contacts.
    identity_ids = returned["identities"]
    later = session.exec(select(Conversation).where(col(Conversation.identity_id).in_(identity_ids),
                                                    Conversation.customer_id == primary.id)).all()
    for conversation in later:
        conversation.customer_id = merged.id
    later_ids = [c.id for c in later]
    later_ratings = session.exec(select(Rating).where(col(Rating.conversation_id).in_(later_ids),
                                                      Rating.customer_id == primary.id)).all()
    for rating in later_ratings:
        rating.customer_id = merged.id
    restored = {}
    for field, (before, copied) in record.copied.items():
        if getattr(primary, field) == copied:
            setattr(primary, field, before)
            restored[field] = before
    merged.merged_into_id = None
    record.split_at = utcnow()
    record.split_by_id = actor_id if actor_type == "agent" else None
    audit.record(session, "customers_split", "customer", primary.id, actor_type=actor_type, actor_id=actor_id,
                 merge_id=record.id, merged_customer_id=merged.id, returned=returned,
                 followed_identity={"conversations": later_ids, "ratings": [r.id for r in later_ratings]},
                 restored=restored)
    session.flush()
    return merged


def split_identity(
    session: Session, customer: Customer, identity_id: int, *, actor_type: str = "agent",
    actor_id: int | None = None,
) -> Customer:
    """Split one channel identity off ``customer`` into a new customer of its own (two people were
    taken for one): the identity goes with its conversations and their ratings; orders, the phone
    and merges stay. NotFound for an identity that is not the customer's; Conflict for their last."""

    identity = session.get(ChannelIdentity, identity_id)
    if identity is None or identity.customer_id != customer.id:
        raise NotFound(f"customer {customer.id} has no identity {identity_id}")
    others = session.exec(select(ChannelIdentity.id).where(ChannelIdentity.customer_id == customer.id,
                                                           ChannelIdentity.id != identity.id).limit(1)).first()
    if others is None:
        raise Conflict(f"identity {identity_id} is customer {customer.id}'s only one: nothing to split it from")
    new = Customer(name=identity.display_name, locale=customer.locale, care_opted_out=customer.care_opted_out)
    session.add(new)
    session.flush()
    identity.customer_id = new.id
    conversations = session.exec(select(Conversation).where(Conversation.identity_id == identity.id,
                                                            Conversation.customer_id == customer.id)).all()
    for conversation in conversations:
        conversation.customer_id = new.id
    conversation_ids = [c.id for c in conversations]
    ratings = session.exec(select(Rating).where(col(Rating.conversation_id).in_(conversation_ids),
                                                Rating.customer_id == customer.id)).all() if conversation_ids else []
    for rating in ratings:
        rating.customer_id = new.id
    moved = {"identities": [identity.id], "conversations": sorted(conversation_ids),
             "ratings": sorted(r.id for r in ratings)}
    audit.record(session, "customer_identity_split", "customer", customer.id, actor_type=actor_type,
                 actor_id=actor_id, new_customer_id=new.id, identity_id=identity.id, channel=identity.channel,
                 moved=moved)
    audit.record(session, "customer_created_by_split", "customer", new.id, actor_type=actor_type,
                 actor_id=actor_id, from_customer_id=customer.id, identity_id=identity.id, moved=moved)
    session.flush()
    return new


def link_verified_phone(session: Session, customer: Customer, phone: str) -> Customer:
    """Record a phone the customer confirmed; if another customer verified it on another channel,
    the two are the same person and are merged (the older record stays). Returns who they are now."""
    number = normalise_phone(phone)
    if number is None:
        raise BadRequest(f"{phone!r} is not a Vietnamese mobile number")
    customer = primary_customer(session, customer)
    other = session.exec(
        select(Customer).where(Customer.phone == number, Customer.phone_verified == True,  # noqa: E712
                               Customer.merged_into_id == None, Customer.id != customer.id)  # noqa: E711
        .order_by(Customer.id)
    ).first()
    # The customer verified the number themselves: theirs before any merge, so that splitting the
    # merge later never takes it from them.
    customer.phone = number
    customer.phone_verified = True
    if other is not None:
        older, newer = (other, customer) if other.id < customer.id else (customer, other)
        customer = merge_customers(session, older, newer)
    return customer

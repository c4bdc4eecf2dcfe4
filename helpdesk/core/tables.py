"""Imports every table so that SQLModel's metadata (and Alembic) knows the whole schema."""

from helpdesk.agents.models import Agent, AuthToken
from helpdesk.audit.models import AuditEntry
from helpdesk.channels.models import ChannelCredential, InboundEvent, OutboxItem
from helpdesk.conversations.models import Conversation, DialogueState, Message
from helpdesk.customers.models import ChannelIdentity, Customer
from helpdesk.ratings.models import Rating
from helpdesk.shop.models import Order, Product, Warranty

__all__ = [
    "Agent", "AuthToken", "AuditEntry", "ChannelCredential", "InboundEvent", "OutboxItem", "Conversation", "DialogueState",
    "Message", "ChannelIdentity", "Customer", "Rating", "Order", "Product", "Warranty",
]

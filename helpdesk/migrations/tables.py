"""Imports every table so that SQLModel's metadata knows the whole schema, for Alembic (env.py) to compare."""

from helpdesk.agents.models import Agent, AuthToken, LoginAttempt, Team, TeamMember
from helpdesk.attachments.models import Attachment
from helpdesk.audit.models import AuditEntry
from helpdesk.campaigns.models import Campaign, CampaignRecipient
from helpdesk.care.models import CareMessage, CarePlan
from helpdesk.channels.models import ChannelCredential, InboundAttempt, InboundEvent, InboundOutcome
from helpdesk.conversations.models import Conversation, ConversationTag, DialogueState, Message
from helpdesk.canned.models import CannedResponse
from helpdesk.customers.models import ChannelIdentity, Customer, CustomerMerge
from helpdesk.nlu_admin.models import NluActiveModel, NluModel
from helpdesk.nps.models import NpsResponse
from helpdesk.jobs.models import ParkedJob
from helpdesk.mail.models import EmailRecord
from helpdesk.outbox.models import OutboxItem
from helpdesk.push.models import PushSubscription, VapidKeyPair
from helpdesk.ratings.models import Rating, RatingRequest
from helpdesk.segments.models import Segment
from helpdesk.shop.models import Order, Product, Warranty
from helpdesk.shop.purchases import CustomerPurchase
from helpdesk.sla.models import BusinessHoursPeriod, Holiday, SLAEvent, SLAOutcome, SLAPolicy, SLATimer
from helpdesk.training.models import (
    NluExample,
    NluFaqAnswer,
    NluIntent,
    NluReviewItem,
    NluTrainingChange,
    NluTrainingJob,
    NluTrainingState,
    NluVocabulary,
)

__all__ = [
    "LoginAttempt", "Team", "TeamMember", "ConversationTag", "CannedResponse",
    "Agent", "AuthToken", "AuditEntry", "ChannelCredential", "InboundEvent", "InboundOutcome", "InboundAttempt", "OutboxItem",
    "Conversation", "DialogueState",
    "Message", "ChannelIdentity", "Customer", "CustomerMerge", "Rating", "Order", "Product", "Warranty",
    "CarePlan", "CareMessage",
    "RatingRequest",
    "SLAPolicy", "BusinessHoursPeriod", "Holiday", "SLATimer", "SLAEvent", "SLAOutcome",
    "NluIntent", "NluExample", "NluVocabulary", "NluTrainingChange", "NluFaqAnswer", "NluReviewItem",
    "NluTrainingState", "NluTrainingJob", "NluModel", "NluActiveModel", "ParkedJob", "Attachment",
    "PushSubscription", "VapidKeyPair", "EmailRecord", "NpsResponse", "CustomerPurchase",
    "Segment",
    "Campaign", "CampaignRecipient",
]

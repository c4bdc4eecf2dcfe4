"""The conversation engine: flows (routers) on top of the NLU and the channel-neutral message types."""

from bot.context import Decision, Escalation, Turn
from bot.engine import ConversationEngine
from bot.knowledge import Knowledge
from bot.responses import Responses

__all__ = ["ConversationEngine", "Decision", "Escalation", "Knowledge", "Responses", "Turn"]

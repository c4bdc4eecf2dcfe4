"""What a handler sees of one turn and what it can do: say things, remember things, escalate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from connectors.base import REQUEST_CONTACT, Attachment, Button, OutboundButtons, OutboundRatingRequest, OutboundText

from bot.attachments import shared_values
from bot.ports import CustomerDirectory, CustomerView, NullShop, ShopDirectory

if TYPE_CHECKING:
    from bot.knowledge import Knowledge
    from bot.responses import Responses
    from nlu import ParseResult


class Parser(Protocol):
    """Anything that reads a message into an intent and entities (the NLU)."""

    async def aparse(self, text: str) -> ParseResult: ...


@dataclass(frozen=True)
class Turn:
    """One customer message as the bot receives it."""

    conversation_key: str
    recipient_id: str
    channel: str
    text: str = ""
    payload: str | None = None
    human_owned: bool = False
    locale_hint: str | None = None
    reply_to: str | None = None
    customer: CustomerView | None = None
    #: what came with the message (photos, files, a shared location or contact), as the platform
    #: described it; the stored copies are the helpdesk's business
    attachments: tuple[Attachment, ...] = ()
    #: the helpdesk's id of the conversation, when there is one (asking where it stands in the queue)
    conversation_id: int | None = None

    @property
    def has_attachments(self) -> bool:
        """Whether anything came with the message besides its text."""
        return bool(self.attachments)


@dataclass(frozen=True)
class Escalation:
    """A request to hand the conversation to a person."""

    reason: str
    priority: str = "normal"
    note: str | None = None


Reply = OutboundText | OutboundButtons | OutboundRatingRequest


@dataclass
class Decision:
    """What the bot decided for a turn."""

    locale: str
    replies: list[Reply] = field(default_factory=list)
    nlu: ParseResult | None = None
    escalation: Escalation | None = None
    handled_by: str | None = None


@dataclass
class Services:
    """The outside world as flows see it: the shop's records and the helpdesk's customer records."""

    shop: ShopDirectory = field(default_factory=NullShop)
    customers: CustomerDirectory | None = None
    timezone: str = "Asia/Ho_Chi_Minh"


@dataclass
class TurnContext:
    """The turn, its NLU reading, the conversation's saved state and the decision being built."""

    turn: Turn
    nlu: ParseResult | None
    state: dict[str, Any]
    locale: str
    responses: Responses
    knowledge: Knowledge
    decision: Decision
    handled_by: str | None = None
    template_values: dict[str, Any] = field(default_factory=dict)
    services: Services = field(default_factory=Services)
    #: a flow used the turn's photos and files (as evidence, or held them for a complaint to come)
    evidence_taken: bool = False

    @property
    def customer_id(self) -> int | None:
        """The customer's id, when the helpdesk knows them."""
        return self.turn.customer.id if self.turn.customer else None

    def entities(self, name: str) -> list[str]:
        """Every value of entity ``name`` in this message: what the NLU read in the text, then what
        a shared contact (``phone``) or location (``address``) gives."""
        typed = [] if self.nlu is None else [str(entity.value) for entity in self.nlu.entities
                                              if entity.entity == name]
        return typed + [value for value in shared_values(self.turn.attachments, name) if value not in typed]

    @property
    def intent(self) -> str | None:
        """The NLU's top intent name (``nlu_fallback`` when unsure), or None for a bare button press."""
        return self.nlu.intent.name if self.nlu is not None else None

    def entity(self, name: str) -> str | None:
        """The first value of entity ``name`` in this message, if any (typed text wins over a shared
        contact or location, as the customer wrote it on purpose)."""
        values = self.entities(name)
        return values[0] if values else None

    def text(self, key: str, **values: Any) -> str:
        """Render template ``key`` in the conversation's language."""
        return self.responses.render(
            key, self.locale, variant=self.state.get("turns", 0), **{**self.template_values, **values}
        )

    def say(self, key: str, **values: Any) -> None:
        """Queue template ``key`` as a plain text reply."""
        self.reply(self.text(key, **values))

    def reply(self, text: str, buttons: tuple[Button, ...] = ()) -> None:
        """Queue a reply with optional buttons."""
        turn = self.turn
        if buttons:
            message: Reply = OutboundButtons(recipient_id=turn.recipient_id, text=text, buttons=buttons,
                                             reply_to=turn.reply_to)
        else:
            message = OutboundText(recipient_id=turn.recipient_id, text=text, reply_to=turn.reply_to)
        self.decision.replies.append(message)

    def ask_phone(self, key: str, **values: Any) -> None:
        """Queue template ``key`` asking for the customer's phone, with a button that shares it where
        the channel has one (Telegram: a contact shared that way is checked like a typed phone)."""
        turn = self.turn
        self.decision.replies.append(OutboundText(
            recipient_id=turn.recipient_id, text=self.text(key, **values), reply_to=turn.reply_to,
            metadata={REQUEST_CONTACT: self.text("share_phone_button")}))

    def escalate(self, reason: str, priority: str = "normal", note: str | None = None) -> None:
        """Ask for a person to take over the conversation."""
        self.decision.escalation = Escalation(reason=reason, priority=priority, note=note)
        self.state.pop("awaiting", None)

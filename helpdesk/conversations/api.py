"""Agent routes for conversations: list, read, reply, note, claim, hand back, resolve."""

from __future__ import annotations

from fastapi import APIRouter, Query
from sqlmodel import Session

from helpdesk.agents.deps import CurrentAgent
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.conversations import service
from helpdesk.conversations.models import Conversation, ConversationState, Message
from helpdesk.conversations.schemas import (
    AgentMessageCreate,
    AssignRequest,
    ConversationDetail,
    ConversationPublic,
    ConversationUpdate,
    ConversationsPublic,
    MessagePublic,
    NoteCreate,
    TagsRequest,
)
from helpdesk.core.deps import EventsDep, SessionDep
from helpdesk.core.errors import Conflict, NotFound
from helpdesk.core.events import EventBus
from helpdesk.customers.models import ChannelIdentity
from helpdesk.jobs.deps import JobsDep
from helpdesk.outbox.queue import retry_failed

router = APIRouter(prefix="/api/conversations", tags=["conversations"])


@router.get("", response_model=ConversationsPublic)
def list_conversations(
    agent: CurrentAgent,
    session: SessionDep,
    state: ConversationState | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0),
) -> ConversationsPublic:
    """Conversations the agent may see, optionally in one state, most urgent first."""
    rows, count = service.list_conversations(session, agent, state=state, limit=limit, offset=offset)
    tags = service.tags_of(session, [r.id for r in rows])
    return ConversationsPublic(
        data=[ConversationPublic.model_validate(r).model_copy(update={"tags": tags[r.id]}) for r in rows], count=count)


@router.get("/{conversation_id}", response_model=ConversationDetail)
def read_conversation(conversation_id: int, agent: CurrentAgent, session: SessionDep) -> ConversationDetail:
    """One conversation with its whole timeline, notes included."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    messages = [MessagePublic.model_validate(m) for m in service.timeline(session, conversation, limit=10_000)]
    public = ConversationPublic.model_validate(conversation).model_dump()
    public["tags"] = service.tags_of(session, [conversation.id])[conversation.id]
    return ConversationDetail(**public, messages=messages)


def _recipient(session: Session, conversation: Conversation) -> str:
    return session.get(ChannelIdentity, conversation.identity_id).external_id


@router.post("/{conversation_id}/messages", response_model=MessagePublic, status_code=201)
def reply(
    conversation_id: int, body: AgentMessageCreate, agent: CurrentAgent, session: SessionDep, jobs: JobsDep,
    events: EventsDep,
) -> MessagePublic:
    """Send a reply to the customer through their channel (claims the conversation if unassigned)."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    message, item = service.agent_reply(session, conversation, agent, body.text, _recipient(session, conversation))
    session.commit()
    drain_chat_soon(jobs, item.channel, item.recipient_id)
    events.publish_soon("message_created", conversation_id=conversation.id, message_id=message.id,
                                author="agent")
    return MessagePublic.model_validate(message)


def _updated(events: EventBus, session: Session, conversation: Conversation, action: str) -> ConversationPublic:
    """Commit an agent's change and tell live views about it."""
    session.commit()
    events.publish_soon("conversation_updated", conversation_id=conversation.id, action=action,
                                state=conversation.state, assignee_id=conversation.assignee_id,
                                team=conversation.team, priority=conversation.priority)
    public = ConversationPublic.model_validate(conversation)
    return public.model_copy(update={"tags": service.tags_of(session, [conversation.id])[conversation.id]})


@router.patch("/{conversation_id}", response_model=ConversationPublic)
def update_conversation(
    conversation_id: int, body: ConversationUpdate, agent: CurrentAgent, session: SessionDep, events: EventsDep
) -> ConversationPublic:
    """Change the priority."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    if body.priority is not None:
        service.set_priority(session, conversation, agent, body.priority)
    return _updated(events, session, conversation, "updated")


@router.post("/{conversation_id}/assign", response_model=ConversationPublic)
def assign(
    conversation_id: int, body: AssignRequest, agent: CurrentAgent, session: SessionDep, events: EventsDep
) -> ConversationPublic:
    """Give the conversation to an agent (``agent_id``) or transfer it to a team's queue (``team``)."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    service.assign(session, conversation, agent, agent_id=body.agent_id, team=body.team)
    return _updated(events, session, conversation, "assigned")


@router.post("/{conversation_id}/reopen", response_model=ConversationPublic)
def reopen(conversation_id: int, agent: CurrentAgent, session: SessionDep, events: EventsDep) -> ConversationPublic:
    """Bring a resolved conversation back to the queue."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    return _updated(events, session, service.reopen(session, conversation, agent), "reopened")


@router.post("/{conversation_id}/tags", response_model=ConversationPublic)
def tags(
    conversation_id: int, body: TagsRequest, agent: CurrentAgent, session: SessionDep, events: EventsDep
) -> ConversationPublic:
    """Add and remove tags."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    service.set_tags(session, conversation, agent, [t.strip().lower() for t in body.add],
                     [t.strip().lower() for t in body.remove])
    return _updated(events, session, conversation, "tagged")


@router.post("/{conversation_id}/notes", response_model=MessagePublic, status_code=201)
def add_note(
    conversation_id: int, body: NoteCreate, agent: CurrentAgent, session: SessionDep, events: EventsDep
) -> MessagePublic:
    """A private note in the timeline; never sent to the customer."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    note = service.add_note(session, conversation, agent, body.text)
    session.commit()
    events.publish_soon("message_created", conversation_id=conversation.id, message_id=note.id,
                                author="agent", private=True)
    return MessagePublic.model_validate(note)


@router.post("/{conversation_id}/claim", response_model=ConversationPublic)
def claim(conversation_id: int, agent: CurrentAgent, session: SessionDep, events: EventsDep) -> ConversationPublic:
    """Take the conversation; the bot stays silent while the agent owns it."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    return _updated(events, session, service.claim(session, conversation, agent), "claimed")


@router.post("/{conversation_id}/handback", response_model=ConversationPublic)
def hand_back(
    conversation_id: int, agent: CurrentAgent, session: SessionDep, events: EventsDep
) -> ConversationPublic:
    """Return the conversation to the bot."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    return _updated(events, session, service.hand_back_to_bot(session, conversation, agent), "handed_back")


@router.post("/{conversation_id}/resolve", response_model=ConversationPublic)
def resolve(
    conversation_id: int, agent: CurrentAgent, session: SessionDep, events: EventsDep
) -> ConversationPublic:
    """Close the conversation (ratings listen for it: helpdesk/ratings/listeners.py)."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    return _updated(events, session, service.resolve(session, conversation, agent), "resolved")


@router.post("/{conversation_id}/messages/{message_id}/retry", response_model=MessagePublic)
def retry_message(
    conversation_id: int, message_id: int, agent: CurrentAgent, session: SessionDep, jobs: JobsDep
) -> MessagePublic:
    """Send a message that finally failed once more."""

    conversation = service.get_conversation_for(session, agent, conversation_id)
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation.id or message.direction != "out":
        raise NotFound(f"message {message_id} not found in conversation {conversation_id}")
    if message.delivery_status != "failed":
        raise Conflict("only a failed message can be retried")
    item = retry_failed(session, message)
    session.commit()
    drain_chat_soon(jobs, item.channel, item.recipient_id)
    return MessagePublic.model_validate(message)

"""Agent routes for conversations: list, read, reply, note, claim, hand back, resolve."""

from __future__ import annotations

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlmodel import Session, func, select

from helpdesk.agents.deps import CurrentAgent
from helpdesk.attachments.deps import AttachmentsDep
from helpdesk.attachments.sending import FileRefused, send_agent_file
from helpdesk.attachments.views import public_messages
from helpdesk.channels.tasks import drain_chat_soon
from helpdesk.conversations import service
from helpdesk.conversations.deps import TypingDep
from helpdesk.conversations.models import Conversation, ConversationState, Message
from helpdesk.conversations.schemas import (
    AgentMessageCreate,
    AssignRequest,
    ConversationDetail,
    ConversationPublic,
    ConversationUpdate,
    ConversationsPublic,
    MessagePublic,
    MessagesPublic,
    NoteCreate,
    TagsRequest,
    TypingForwarded,
    TypingSignal,
)
from helpdesk.core.deps import EngineDep, EventsDep, SessionDep, SettingsDep
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
    messages = public_messages(session, service.timeline(session, conversation, limit=10_000))
    public = ConversationPublic.model_validate(conversation).model_dump()
    public["tags"] = service.tags_of(session, [conversation.id])[conversation.id]
    return ConversationDetail(**public, messages=messages)


def _recipient(session: Session, conversation: Conversation) -> str:
    return session.get(ChannelIdentity, conversation.identity_id).external_id


@router.get("/{conversation_id}/messages", response_model=MessagesPublic)
def list_messages(
    conversation_id: int, agent: CurrentAgent, session: SessionDep, after_id: int = Query(0, ge=0),
    limit: int = Query(200, ge=1, le=1000),
) -> MessagesPublic:
    """The conversation's messages oldest first (those after ``after_id``), notes included, each with
    its ``attachments``: ``[{id, kind, mime_type, size, name, url, thumbnail_url, status, error, …}]``."""
    conversation = service.get_conversation_for(session, agent, conversation_id)
    messages = service.timeline(session, conversation, after_id=after_id, limit=limit)
    count = session.exec(select(func.count()).select_from(Message)
                         .where(Message.conversation_id == conversation.id)).one()
    return MessagesPublic(data=public_messages(session, messages), count=count)


#: the reply's two bodies, for the API's documentation (the route reads the body itself)
_REPLY_BODIES = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": AgentMessageCreate.model_json_schema()},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "the file to send"},
        "text": {"type": "string", "maxLength": 4096, "description": "its caption"}}}},
}}}


def _text_reply(engine, agent, conversation_id: int, text: str) -> tuple[Message, Any]:
    with Session(engine, expire_on_commit=False) as session:
        conversation = service.get_conversation_for(session, agent, conversation_id)
        message, item = service.agent_reply(session, conversation, agent, text, _recipient(session, conversation))
        session.commit()
        return message, item


async def _json_reply_text(request: Request, max_bytes: int) -> str:
    """The text of a JSON reply, validated as ``AgentMessageCreate`` (422 as for any body)."""
    body = await request.body()
    if len(body) > max_bytes:
        raise FileRefused(f"the request body is larger than the {max_bytes} bytes a text reply may be", 413)
    try:
        return AgentMessageCreate.model_validate_json(body or b"null").text
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])}
                                      for error in exc.errors(include_url=False)]) from None


async def _file_reply(request: Request, files, agent, conversation_id: int) -> tuple[Message, Any]:
    async with request.form(max_files=1, max_fields=4) as form:
        upload, text = form.get("file"), form.get("text") or ""
        if upload is None or isinstance(upload, str):
            raise FileRefused("the form needs a file in its 'file' field", 422)
        if not isinstance(text, str) or len(text) > 4096:
            raise FileRefused("text (the caption) must be at most 4096 characters", 422)
        data = await upload.read()
        return await send_agent_file(files, conversation_id=conversation_id, agent=agent, data=data,
                                     name=upload.filename, text=text.strip())


@router.post("/{conversation_id}/messages", response_model=MessagePublic, status_code=201,
             openapi_extra=_REPLY_BODIES,
             responses={413: {"description": "The file is over the channel's or the server's limit"},
                        415: {"description": "The channel cannot send a file of this kind"},
                        422: {"description": "Invalid body, or an empty or damaged file"}})
async def reply(
    conversation_id: int, request: Request, agent: CurrentAgent, engine: EngineDep, jobs: JobsDep,
    events: EventsDep, files: AttachmentsDep, settings: SettingsDep, typing: TypingDep,
) -> MessagePublic:
    """Send a reply to the customer through their channel (claims the conversation if unassigned):
    JSON ``{"text"}``, or ``multipart/form-data`` with a ``file`` and an optional ``text`` (its
    caption). A file is checked against the server's cap and the channel's limits before anything is
    sent; the outbox delivers it with the channel's own API."""
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        message, item = await _file_reply(request, files, agent, conversation_id)
    else:
        text = await _json_reply_text(request, settings.limits.api_body_bytes)
        message, item = await to_thread.run_sync(_text_reply, engine, agent, conversation_id, text)
    drain_chat_soon(jobs, item.channel, item.recipient_id)
    await typing.reply_sent(message.conversation_id, item.channel, item.recipient_id)
    events.publish_soon("message_created", conversation_id=message.conversation_id, message_id=message.id,
                        author="agent")

    def shown() -> MessagePublic:
        with Session(engine) as session:
            return public_messages(session, [message])[0]

    return await to_thread.run_sync(shown)


def _typing_target(engine, agent, conversation_id: int) -> tuple[str, str]:
    with Session(engine) as session:
        conversation = service.get_conversation_for(session, agent, conversation_id)
        service.check_may_reply(conversation, agent)
        return conversation.channel, _recipient(session, conversation)


@router.post("/{conversation_id}/typing", response_model=TypingForwarded, status_code=202,
             responses={403: {"description": "The conversation is another agent's"},
                        409: {"description": "The conversation is resolved"}})
async def typing_signal(
    conversation_id: int, agent: CurrentAgent, engine: EngineDep, typing: TypingDep,
    body: TypingSignal | None = None,
) -> TypingForwarded:
    """The agent is typing a reply (``typing: true``, sent at most every few seconds while they type)
    or stopped (``false``): the customer sees "typing" where their channel can show it. Forwarded in
    the background, best effort; ``forwarded`` is false when the conversation's throttle held it back
    (a "typing" already showing) or there was nothing to switch off. Only an agent who may reply may
    signal. No body means ``typing: true``."""
    channel, recipient_id = await to_thread.run_sync(_typing_target, engine, agent, conversation_id)
    on = body.typing if body is not None else True
    return TypingForwarded(forwarded=await typing.signal(conversation_id, channel, recipient_id, on))


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
    return public_messages(session, [note])[0]


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
    return public_messages(session, [message])[0]

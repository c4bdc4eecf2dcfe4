"""Telegram through the Bot API, using aiogram 3's client.

Webhooks are authenticated by the secret token Telegram echoes in ``X-Telegram-Bot-Api-Secret-Token``
(set with :meth:`TelegramConnector.set_webhook`). Updates CareDesk does not act on (``my_chat_member``,
``channel_post``, polls, …) are parsed into one ``unsupported`` message rather than dropped, so the edge
still stores the raw event once under its ``update_id`` and never answers it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any, ClassVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
    Update,
    User,
)
from aiogram.utils.token import TokenValidationError
from pydantic import BaseModel, ValidationError

from connectors.base import (
    REQUEST_CONTACT,
    Attachment,
    AttachmentKind,
    Button,
    ChannelConnector,
    DeliveryError,
    InboundMessage,
    MediaError,
    MediaFile,
    PayloadError,
    VerificationError,
    WebhookRequest,
    download,
    parse_rating_payload,
    secrets_match,
)
from connectors.telegram_media import (
    CLOUD_DOWNLOAD_LIMIT,
    MAX_CAPTION_LENGTH,
    MEDIA_LIMITS,
    PHOTO_REFUSALS,
    message_attachments,
    send_method,
)

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: the only update types CareDesk acts on; everything else is not even delivered once the webhook is set
ALLOWED_UPDATES: tuple[str, ...] = ("message", "edited_message", "callback_query")
#: Telegram rejects longer ``callback_data`` with an opaque BUTTON_DATA_INVALID
MAX_CALLBACK_DATA_BYTES = 64


class TelegramConfig(BaseModel):
    """Credentials and endpoint of one Telegram bot (``CAREDESK_TELEGRAM__*``)."""

    token: str = ""
    secret_token: str = ""
    api_base: str = "https://api.telegram.org"
    request_timeout_s: float = 30.0


#: ``Response[T]`` of each method's result type, held here: aiogram parametrises the generic model on
#: every call, and pydantic keeps parametrised models only weakly, so without a strong reference each
#: one is built again (a new pydantic model, about a millisecond) after every garbage collection
_RESPONSE_TYPES: dict[Any, Any] = {}


class _CareDeskSession(AiohttpSession):
    """aiogram's aiohttp session, keeping Telegram's own error code and description on errors."""

    def check_response(self, bot: Bot, method: TelegramMethod[Any], status_code: int, content: str) -> Any:
        """Classify the response like aiogram does, remembering what Telegram actually answered."""
        returning = method.__returning__
        if returning not in _RESPONSE_TYPES:
            _RESPONSE_TYPES[returning] = Response[returning]  # type: ignore[valid-type]
        try:
            return super().check_response(bot, method, status_code, content)
        except ClientDecodeError as error:
            # a proxy in front of Telegram answers 502/504 with an HTML page: that is an outage to
            # retry, not a malformed response
            if status_code >= 500:
                outage = TelegramServerError(method, f"HTTP {status_code}")
                raise _annotate(outage, status_code, None) from error
            raise
        except TelegramAPIError as error:
            # aiogram keeps neither the error_code nor (for 429) the original description
            _annotate(error, status_code, content)
            raise

    async def close(self) -> None:
        """Close the HTTP session, waiting for TLS shutdown only when there is TLS."""
        if self._session is None or self._session.closed:
            return
        if self.api.base.startswith("https://"):
            await super().close()  # sleeps 250 ms so SSL transports close cleanly
        else:
            await self._session.close()


def _annotate(error: TelegramAPIError, status_code: int, content: str | None) -> TelegramAPIError:
    body: Any = None
    if content is not None:
        try:
            body = json.loads(content)
        except ValueError:
            body = None
    if not isinstance(body, dict):
        body = {}
    error.telegram_code = body.get("error_code", status_code)  # type: ignore[attr-defined]
    error.telegram_description = body.get("description") or error.message  # type: ignore[attr-defined]
    return error


def _description(error: Exception) -> str:
    """What Telegram said when it refused a call (its own description), else the error's text."""
    return getattr(error, "telegram_description", None) or getattr(error, "message", None) or str(error)


def delivery_error(error: Exception) -> DeliveryError:
    """Translate an aiogram failure into what the outbox needs to decide on a retry."""
    code = getattr(error, "telegram_code", None)
    description = (
        getattr(error, "telegram_description", None) or getattr(error, "message", None) or str(error)
    )
    match error:
        case TelegramRetryAfter():
            return DeliveryError(
                description, retryable=True, retry_after=float(error.retry_after), code=code or 429
            )
        case TelegramForbiddenError():
            # blocked, deactivated or never started the bot: retrying cannot help until they write again
            return DeliveryError(description, retryable=False, unreachable=True, code=code or 403)
        case TelegramUnauthorizedError():
            return DeliveryError(
                f"Telegram rejected the bot token ({description}); check CAREDESK_TELEGRAM__TOKEN",
                retryable=False,
                code=code or 401,
            )
        case TelegramMigrateToChat():
            # the group became a supergroup with a new id; sending to the old one keeps failing
            return DeliveryError(
                f"{description} (now chat {error.migrate_to_chat_id})", retryable=False, code=code or 400
            )
        case TelegramEntityTooLarge():
            # a subclass of TelegramNetworkError, but resending the same body fails the same way
            return DeliveryError(description, retryable=False, code=code or 413)
        case TelegramServerError():
            return DeliveryError(description, retryable=True, code=code)
        case TelegramNetworkError():
            return DeliveryError(description, retryable=True, code="network")
        case TelegramBadRequest():
            return DeliveryError(description, retryable=False, code=code or 400)
        case TelegramAPIError():
            return DeliveryError(description, retryable=False, code=code)
        case TokenValidationError():
            return DeliveryError(
                f"the Telegram bot token is malformed ({error}); check CAREDESK_TELEGRAM__TOKEN",
                retryable=False,
                code="token",
            )
        case asyncio.TimeoutError():
            return DeliveryError("Telegram did not answer in time", retryable=True, code="timeout")
        case _:
            return DeliveryError(f"unexpected answer from Telegram: {error}", retryable=False)


class TelegramConnector(ChannelConnector):
    """A Telegram bot: verifies webhooks by secret token, parses updates, sends through the Bot API."""

    name: ClassVar[str] = "telegram"
    config_model: ClassVar[type[BaseModel]] = TelegramConfig
    supports_buttons: ClassVar[bool] = True

    def __init__(self, config: TelegramConfig):
        self.config = config
        self._bot: Bot | None = None
        self._bot_loop: asyncio.AbstractEventLoop | None = None

    @property
    def enabled(self) -> bool:
        """Whether a bot token is configured."""
        return bool(self.config.token)

    # -- inbound -------------------------------------------------------------------------------------

    async def verify(self, request: WebhookRequest) -> None:
        """Accept only webhooks carrying the configured secret token."""
        if not self.config.secret_token:
            raise VerificationError(
                "no Telegram webhook secret is configured (CAREDESK_TELEGRAM__SECRET_TOKEN); "
                "webhooks without a secret are refused"
            )
        given = request.header(SECRET_HEADER)
        if given is None:
            raise VerificationError(f"missing {SECRET_HEADER} header")
        if not secrets_match(self.config.secret_token, given):
            raise VerificationError(f"{SECRET_HEADER} does not match the configured secret")

    def parse(self, payload: Any) -> list[InboundMessage]:
        """Normalise one Telegram Update; unsupported update types become one ``unsupported`` message."""
        if not isinstance(payload, dict):
            raise PayloadError(f"a Telegram update is a JSON object, got {type(payload).__name__}")
        if "update_id" not in payload:
            raise PayloadError("not a Telegram update: no update_id")
        try:
            update = Update.model_validate(payload)
        except ValidationError as error:
            raise PayloadError(f"invalid Telegram update: {_summarise(error)}") from error

        external_id = str(update.update_id)
        if update.message is not None:
            return [self._from_message(update.message, external_id, "message")]
        if update.edited_message is not None:
            return [self._from_message(update.edited_message, external_id, "edited_message")]
        if update.callback_query is not None:
            return [self._from_callback(update.callback_query, external_id)]
        return [self._unsupported(payload, external_id)]

    def _from_message(self, message: Message, external_id: str, update_type: str) -> InboundMessage:
        attachments = message_attachments(message)
        metadata: dict[str, Any] = {
            "update_type": update_type,
            "message_id": message.message_id,
            "chat_type": message.chat.type,
        }
        if message.contact is not None:
            # a customer sharing their phone number is how orders are usually looked up
            metadata["contact"] = {
                "phone_number": message.contact.phone_number,
                "first_name": message.contact.first_name,
                "last_name": message.contact.last_name,
                "user_id": message.contact.user_id,
            }
        text = message.text or message.caption or ""
        kind = "message" if text or attachments or message.contact is not None else "unsupported"
        if update_type == "edited_message":
            metadata["edited"] = True
        when = message.edit_date if update_type == "edited_message" and message.edit_date else message.date
        return InboundMessage(
            channel=self.name,
            sender_id=str(message.chat.id),
            external_id=external_id,
            text=text,
            kind=kind,
            attachments=attachments,
            timestamp=when,
            sender_name=_display_name(message.from_user) or _chat_name(message),
            metadata=metadata,
        )

    def _from_callback(self, callback: CallbackQuery, external_id: str) -> InboundMessage:
        chat_id = callback.message.chat.id if callback.message is not None else callback.from_user.id
        metadata: dict[str, Any] = {"update_type": "callback_query"}
        if callback.message is not None:
            # the message carrying the keyboard, so a flow can edit it after the press
            metadata["message_id"] = callback.message.message_id
        rating = parse_rating_payload(callback.data)
        if rating is not None:
            metadata["rating"] = {"subject": rating[0], "stars": rating[1]}
        return InboundMessage(
            channel=self.name,
            sender_id=str(chat_id),
            external_id=external_id,
            text=callback.data or "",
            kind="postback",
            payload=callback.data,
            sender_name=_display_name(callback.from_user),
            reply_token=callback.id,
            metadata=metadata,
        )

    def _unsupported(self, payload: dict[str, Any], external_id: str) -> InboundMessage:
        update_type = next((key for key in payload if key != "update_id"), "unknown")
        event = payload.get(update_type)
        sender_id = ""
        if isinstance(event, dict):
            for key in ("chat", "from", "user"):
                if isinstance(event.get(key), dict) and "id" in event[key]:
                    sender_id = str(event[key]["id"])
                    break
        return InboundMessage(
            channel=self.name,
            sender_id=sender_id,
            external_id=external_id,
            kind="unsupported",
            metadata={"update_type": update_type},
        )

    # -- outbound ------------------------------------------------------------------------------------

    def _get_bot(self) -> Bot:
        if not self.enabled:
            raise DeliveryError("Telegram is not configured (CAREDESK_TELEGRAM__TOKEN)", retryable=False)
        loop = asyncio.get_running_loop()
        if self._bot is not None and self._bot_loop is not loop:
            # an aiohttp session belongs to the loop that made it (tests, a restarted worker): start over
            self._bot = None
        if self._bot is None:
            session = _CareDeskSession(
                api=TelegramAPIServer.from_base(self.config.api_base),
                timeout=self.config.request_timeout_s,
            )
            try:
                self._bot = Bot(self.config.token, session=session)
            except TokenValidationError as error:
                raise delivery_error(error) from error
            self._bot_loop = loop
        return self._bot

    async def send_text(self, recipient_id: str, text: str, *, reply_to: str | None = None) -> str:
        """Send plain text (no parse mode, so customers' and agents' text is shown as written)."""
        bot = self._get_bot()
        try:
            sent = await bot.send_message(
                chat_id=_chat_id(recipient_id), text=text, reply_parameters=_reply_parameters(reply_to)
            )
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error
        return str(sent.message_id)

    async def send(self, message: Any) -> str:
        """Deliver an outgoing message; a text that asks for the customer's phone (``REQUEST_CONTACT``
        in its metadata) comes with a one-time reply keyboard whose button shares their number."""
        title = message.metadata.get(REQUEST_CONTACT) if message.kind == "text" else None
        if not title:
            return await super().send(message)
        # a reply keyboard (not an inline one): only it can ask Telegram for the user's own contact
        markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text=str(title)[:64], request_contact=True)]],
                                     resize_keyboard=True, one_time_keyboard=True)
        try:
            sent = await self._get_bot().send_message(chat_id=_chat_id(message.recipient_id), text=message.text,
                                                      reply_markup=markup,
                                                      reply_parameters=_reply_parameters(message.reply_to))
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error
        return str(sent.message_id)

    async def send_buttons(
        self, recipient_id: str, text: str, buttons: tuple[Button, ...], *, reply_to: str | None = None
    ) -> str:
        """Send text with an inline keyboard whose presses come back as postbacks."""
        for button in buttons:
            if len(button.payload.encode()) > MAX_CALLBACK_DATA_BYTES:
                raise DeliveryError(
                    f"button payload {button.payload!r} is longer than Telegram's "
                    f"{MAX_CALLBACK_DATA_BYTES}-byte callback_data limit",
                    retryable=False,
                    code="callback_data_too_long",
                )
        markup = InlineKeyboardMarkup(inline_keyboard=_keyboard_rows(buttons))
        bot = self._get_bot()
        try:
            sent = await bot.send_message(
                chat_id=_chat_id(recipient_id),
                text=text,
                reply_markup=markup,
                reply_parameters=_reply_parameters(reply_to),
            )
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error
        return str(sent.message_id)

    async def typing_on(self, recipient_id: str) -> None:
        """``sendChatAction`` "typing": Telegram shows it for about five seconds, or until the bot's
        next message arrives, so there is nothing to switch off."""
        bot = self._get_bot()
        try:
            await bot.send_chat_action(chat_id=_chat_id(recipient_id), action="typing")
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error

    async def acknowledge(self, message: InboundMessage) -> None:
        """Stop the button's loading spinner; a failure here is logged, never raised."""
        if message.kind != "postback" or not message.reply_token or not self.enabled:
            return
        try:
            await self._get_bot().answer_callback_query(callback_query_id=message.reply_token)
        except (AiogramError, TokenValidationError, DeliveryError, asyncio.TimeoutError) as error:
            # the spinner times out by itself after a few seconds; the customer's press is handled anyway
            logger.warning("could not answer Telegram callback query %s: %s", message.reply_token, error)

    # -- media ---------------------------------------------------------------------------------------

    media_limits: ClassVar[Mapping[str, int]] = MEDIA_LIMITS

    async def fetch_media(self, attachment: Attachment, *, max_bytes: int) -> MediaFile:
        """Download a file the customer sent: ``getFile`` for its path, then the Bot API's file URL.

        The path ``getFile`` hands out is valid for an hour at least, so it is asked for each time.
        """
        if not attachment.file_id:
            return await super().fetch_media(attachment, max_bytes=max_bytes)
        _check_announced_size(attachment.size, max_bytes)
        bot = self._get_bot_for_media()
        try:
            found = await bot.get_file(attachment.file_id)
        except TelegramBadRequest as error:
            # "file is too big" (over the cloud API's 20 MB) or "invalid file_id": asking again cannot help
            raise MediaError(f"Telegram refused the file: {_description(error)}", retryable=False) from error
        except (AiogramError, asyncio.TimeoutError) as error:
            failure = delivery_error(error)
            raise MediaError(f"Telegram's getFile failed: {failure.reason}",
                             retryable=failure.retryable) from error
        _check_announced_size(found.file_size, max_bytes)
        if not found.file_path:
            raise MediaError("Telegram gave no path to download the file from", retryable=False)
        url = bot.session.api.file_url(bot.token, found.file_path)
        limit = max_bytes if bot.session.api.is_local else min(max_bytes, CLOUD_DOWNLOAD_LIMIT)
        name = attachment.name or found.file_path.rsplit("/", 1)[-1]
        fetched = await download(url, max_bytes=limit, name=name)
        # the file server answers application/octet-stream; the message said what the file is
        generic = fetched.mime_type in (None, "application/octet-stream")
        mime = attachment.mime_type if generic and attachment.mime_type else fetched.mime_type
        return MediaFile(fetched.data, mime, fetched.name)

    def _get_bot_for_media(self) -> Bot:
        try:
            return self._get_bot()
        except DeliveryError as error:
            raise MediaError(error.reason, retryable=False) from error

    async def send_file(self, recipient_id: str, file: MediaFile, kind: AttachmentKind, *, caption: str = "",
                        reply_to: str | None = None) -> str:
        """Send with sendPhoto, sendVideo, sendVoice, sendAudio, sendAnimation or sendDocument.

        A caption over Telegram's 1024 characters follows as a text message; a photo Telegram cannot
        show as one (odd dimensions) is sent again as a document.
        """
        limit = self.media_limits.get(kind)
        if limit is None:
            raise DeliveryError(f"Telegram bots cannot send a {kind} as a file", retryable=False, code="kind")
        if len(file.data) > limit:
            raise DeliveryError(f"the file is {len(file.data)} bytes; Telegram takes a {kind} of at most "
                                f"{limit}", retryable=False, code=413)
        fits = len(caption) <= MAX_CAPTION_LENGTH
        shown = caption if fits else ""
        method, field = send_method(kind, file.mime_type)
        try:
            try:
                sent = await self._upload(method, field, recipient_id, file, shown, reply_to)
            except TelegramBadRequest as error:
                if method != "send_photo" or not any(code in _description(error) for code in PHOTO_REFUSALS):
                    raise
                sent = await self._upload("send_document", "document", recipient_id, file, shown, reply_to)
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error
        if not fits:
            await self.send_text(recipient_id, caption)
        return sent

    async def _upload(self, method: str, field: str, recipient_id: str, file: MediaFile, caption: str,
                      reply_to: str | None) -> str:
        bot = self._get_bot()
        upload = BufferedInputFile(file.data, filename=file.name or "file")
        sent = await getattr(bot, method)(
            chat_id=_chat_id(recipient_id),
            **{field: upload},
            caption=caption or None,
            reply_parameters=_reply_parameters(reply_to),
        )
        return str(sent.message_id)

    async def set_webhook(self, url: str) -> bool:
        """Point the bot's webhook at ``url`` with the secret token; raises DeliveryError on failure."""
        if not self.config.secret_token:
            raise DeliveryError(
                "set CAREDESK_TELEGRAM__SECRET_TOKEN first: CareDesk refuses webhooks without a secret",
                retryable=False,
                code="secret_token",
            )
        bot = self._get_bot()
        try:
            return await bot.set_webhook(
                url=url, secret_token=self.config.secret_token, allowed_updates=list(ALLOWED_UPDATES)
            )
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error

    async def check_credentials(self) -> str | None:
        """``getMe``: the bot's @username, or DeliveryError (a rejected token: not retryable)."""
        bot = self._get_bot()
        try:
            me = await bot.get_me()
        except (AiogramError, asyncio.TimeoutError) as error:
            raise delivery_error(error) from error
        return f"@{me.username}" if me.username else f"bot {me.id}"

    async def close(self) -> None:
        """Close the HTTP session, if one was opened."""
        bot, self._bot, self._bot_loop = self._bot, None, None
        if bot is not None:
            await bot.session.close()


def _check_announced_size(size: int | None, max_bytes: int) -> None:
    if size is not None and size > max_bytes:
        raise MediaError(f"the file is {size} bytes, over the limit of {max_bytes}", retryable=False)


def _keyboard_rows(buttons: tuple[Button, ...]) -> list[list[InlineKeyboardButton]]:
    """Star ratings read best as one row; short numbers (a 0–10 scale) six to a row; other choices
    (often long Vietnamese titles) one per row."""
    keys = [InlineKeyboardButton(text=button.title, callback_data=button.payload) for button in buttons]
    if keys and all(parse_rating_payload(button.payload) is not None for button in buttons):
        return [keys]
    if len(keys) > 5 and all(len(button.title) <= 2 for button in buttons):
        return [keys[start:start + 6] for start in range(0, len(keys), 6)]
    return [[key] for key in keys]


def _chat_id(recipient_id: str) -> int | str:
    # private chat and group ids are integers; "@channelname" stays a string
    try:
        return int(recipient_id)
    except ValueError:
        return recipient_id


def _reply_parameters(reply_to: str | None) -> ReplyParameters | None:
    if not reply_to or not reply_to.isdigit():
        return None
    # the quoted message may have been deleted; the answer matters more than the quote
    return ReplyParameters(message_id=int(reply_to), allow_sending_without_reply=True)


def _display_name(user: User | None) -> str | None:
    if user is None:
        return None
    full = " ".join(part for part in (user.first_name, user.last_name) if part)
    return full or user.username or None


def _chat_name(message: Message) -> str | None:
    chat = message.chat
    full = " ".join(part for part in (chat.first_name, chat.last_name) if part)
    return full or chat.title or chat.username or None


def _summarise(error: ValidationError) -> str:
    parts = []
    for detail in error.errors()[:3]:
        location = ".".join(str(part) for part in detail["loc"]) or "update"
        parts.append(f"{location}: {detail['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")

"""Logging set-up: plain text for a terminal, or one JSON object a line for a log collector.

``CAREDESK_LOG_FORMAT=json`` (the default in production) writes each record to stderr as one JSON
object with its time, level, logger and message, plus the conversation, inbound event and job the
record was logged for when known. Those come from context variables that the job runner (the job's
name) and a conversation turn (the event and the conversation) set, so every record logged while a
turn runs, in any module, carries them without each call site passing them along.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

#: the named job running in this task (see helpdesk.jobs.runner)
current_job: ContextVar[str | None] = ContextVar("caredesk_job", default=None)
#: the inbound event a conversation turn is processing
current_event_id: ContextVar[int | None] = ContextVar("caredesk_event_id", default=None)
#: the conversation that turn belongs to, once known
current_conversation_id: ContextVar[int | None] = ContextVar("caredesk_conversation_id", default=None)

_CONTEXT = (("job", current_job), ("event_id", current_event_id), ("conversation_id", current_conversation_id))
HANDLER_NAME = "caredesk-stderr"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON: time (UTC, ISO 8601), level, logger, message, the context ids
    that are set, and the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        """The record's JSON line."""
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, variable in _CONTEXT:
            value = variable.get()
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def log_format(setting: str, environment: str) -> str:
    """``json`` or ``text``: the setting, or when it is ``auto``, json in production and text elsewhere."""
    if setting == "auto":
        return "json" if environment == "production" else "text"
    return setting


def setup_logging(level: str, fmt: str = "text") -> None:
    """Send every record at ``level`` and above to stderr in ``fmt`` (``text`` or ``json``), through
    one handler on the root logger (a second call replaces it; handlers others added stay)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    for old in [existing for existing in root.handlers if existing.get_name() == HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO, and some platforms put the bot token in the URL path.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # one line per Alembic plugin at every start says nothing to an operator
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)


def uvicorn_log_config(fmt: str) -> dict[str, Any] | None:
    """uvicorn's own loggers through the root logger's handler (one format for every line), or None
    to keep uvicorn's default for text."""
    if fmt != "json":
        return None
    return {"version": 1, "disable_existing_loggers": False,
            "loggers": {name: {"handlers": [], "propagate": True}
                        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}}

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


#: polled endpoints whose every answered request would drown the access log (``caredesk chat`` asks
#: for new replies twice a second); their failures are still logged
QUIET_ACCESS_PATHS = frozenset({"/webhooks/cli/messages"})


class QuietPollsFilter(logging.Filter):
    """Drops uvicorn's access line of a successful request to one of ``QUIET_ACCESS_PATHS``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a 2xx/3xx answer to a quiet path; uvicorn's arguments are (client, method,
        path with query, HTTP version, status)."""
        args = record.args
        if not isinstance(args, tuple) or len(args) < 5 or not isinstance(args[2], str):
            return True
        status = args[4]
        return args[2].partition("?")[0] not in QUIET_ACCESS_PATHS or not isinstance(status, int) or status >= 400


def uvicorn_log_config(fmt: str) -> dict[str, Any]:
    """uvicorn's logging: its own text format for ``text``, through the root logger's handler (one
    format for every line) for ``json``; either way without the access lines of quiet polls."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    quiet = {"quiet_polls": {"()": QuietPollsFilter}}
    if fmt != "json":
        config = copy.deepcopy(LOGGING_CONFIG)
        config.setdefault("filters", {}).update(quiet)
        config["loggers"]["uvicorn.access"].setdefault("filters", []).append("quiet_polls")
        return config
    loggers: dict[str, Any] = {name: {"handlers": [], "propagate": True}
                               for name in ("uvicorn", "uvicorn.error", "uvicorn.access")}
    loggers["uvicorn.access"]["filters"] = ["quiet_polls"]
    return {"version": 1, "disable_existing_loggers": False, "filters": quiet, "loggers": loggers}

"""Structured logs: one JSON object a line, naming the conversation, the event and the job when a
record is logged for one."""

from __future__ import annotations

import io
import json
import logging

import pytest

from helpdesk.core.logs import JsonFormatter, current_job, log_format
from tests.helpdesk.channels.test_telegram_flow import post_update, telegram_update


class JsonLines(logging.Handler):
    """Formats each record as the JSON formatter does, and keeps the parsed lines."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        assert "\n" not in text  # one record, one line
        self.lines.append(json.loads(text))


@pytest.fixture
def json_lines():
    handler = JsonLines()
    logger = logging.getLogger("helpdesk")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_a_record_is_one_json_line_with_time_level_logger_and_message():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("caredesk.test.json")
    logger.addHandler(handler)
    logger.propagate = False
    token = current_job.set("drain_chat")
    try:
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            logger.error("sending to %s failed", "Lan ✓", exc_info=True)
    finally:
        current_job.reset(token)
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "caredesk.test.json"
    assert entry["message"] == "sending to Lan ✓ failed" and entry["job"] == "drain_chat"
    assert entry["time"].endswith("+00:00") and "RuntimeError: boom" in entry["exception"]
    assert "event_id" not in entry and "conversation_id" not in entry


async def test_what_a_turn_logs_names_its_event_conversation_and_job(telegram_client, json_lines):
    assert (await post_update(telegram_client, telegram_update(7001, "bảo hành bao lâu vậy shop"))).status_code == 200
    await telegram_client.settle()
    turn_lines = [line for line in json_lines.lines if line["logger"] == "helpdesk.conversations.flows"]
    assert turn_lines, json_lines.lines
    [answered] = [line for line in turn_lines if line["message"].startswith("answered")]
    assert answered["job"] == "inbound_event"
    assert isinstance(answered["event_id"], int) and isinstance(answered["conversation_id"], int)


def test_json_is_the_default_in_production_and_text_elsewhere():
    assert log_format("auto", "production") == "json"
    assert log_format("auto", "development") == "text"
    assert log_format("text", "production") == "text"


def test_uvicorn_access_lines_of_answered_chat_polls_are_dropped_and_failures_kept():
    from helpdesk.core.logs import uvicorn_log_config

    for fmt in ("text", "json"):
        config = uvicorn_log_config(fmt)
        assert config["loggers"]["uvicorn.access"]["filters"] == ["quiet_polls"]
        quiet = config["filters"]["quiet_polls"]["()"]()  # what dictConfig builds

        def kept(path: str, status: int) -> bool:
            record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                                       ("127.0.0.1:5000", "GET", path, "1.1", status), None)
            return quiet.filter(record)

        assert not kept("/webhooks/cli/messages?sender_id=cli-1&after=3", 200)
        assert kept("/webhooks/cli/messages?sender_id=cli-1", 500)  # a failing poll is still worth a line
        assert kept("/webhooks/cli", 200) and kept("/healthz", 200)

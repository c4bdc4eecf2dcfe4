"""The kind of a failed send, read from the reason the connectors store (their real wording for the
platforms' answers, as the fakes give them)."""

from __future__ import annotations

import pytest

from connectors import facebook, zalo_bot
from connectors.zalo_oa import ZaloOAConnector
from helpdesk.outbox.failures import delivery_error_kind
from tests.fakes.facebook_api import DEFAULT_ERRORS
from tests.fakes.telegram_api import DEFAULT_DESCRIPTIONS
from tests.fakes.zalo_api import BOT_DESCRIPTIONS, OA_ERROR_MESSAGES


def facebook_reason(code: int, subcode: int | None = None, status: int = 400) -> str:
    error = {"message": DEFAULT_ERRORS[code][0], "type": DEFAULT_ERRORS[code][1], "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return facebook.delivery_error(status, {"error": error}, {}).reason


def zalo_oa_reason(code: int) -> str:
    # the translation reads nothing of the connector's state
    return ZaloOAConnector.delivery_error(None, code, OA_ERROR_MESSAGES[code]).reason  # type: ignore[arg-type]


@pytest.mark.parametrize(("reason", "kind"), [
    (DEFAULT_DESCRIPTIONS[403], "blocked"),
    (facebook_reason(551), "blocked"),
    (zalo_bot.delivery_error(403, {"ok": False, "error_code": 403, "description": BOT_DESCRIPTIONS[403]}).reason,
     "blocked"),
    (facebook_reason(10, 2018278), "outside_window"),
    (zalo_oa_reason(-230), "outside_window"),
    (zalo_oa_reason(-232), "outside_window"),
    ("Request Entity Too Large", "too_large"),
    (f"the file is {30 * 1024 * 1024} bytes; Messenger takes attachments of at most 25 MB", "too_large"),
    (DEFAULT_DESCRIPTIONS[429].format(retry_after=5), "rate_limited"),
    (facebook_reason(613), "rate_limited"),
    (zalo_oa_reason(-32), "rate_limited"),
    (DEFAULT_DESCRIPTIONS[400], "unknown"),
    (facebook_reason(100), "unknown"),
])
def test_a_platform_reason_is_read_as_its_kind(reason, kind):
    assert delivery_error_kind(reason) == kind, reason


def test_a_message_that_did_not_fail_has_no_kind():
    assert delivery_error_kind(None) is None and delivery_error_kind("") is None

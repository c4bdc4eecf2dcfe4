"""Loopback fakes of the outside platforms CareDesk talks to."""

from .telegram_api import FakeTelegramAPI, RecordedCall

__all__ = ["FakeTelegramAPI", "RecordedCall"]

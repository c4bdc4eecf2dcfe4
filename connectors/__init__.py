"""Messaging channels. ``CONNECTORS`` is the only place channels are listed."""

from connectors.base import ChannelConnector
from connectors.cli import CliConnector
from connectors.telegram import TelegramConnector

CONNECTORS: dict[str, type[ChannelConnector]] = {
    cls.name: cls for cls in (TelegramConnector, CliConnector)
}

__all__ = ["CONNECTORS", "ChannelConnector"]

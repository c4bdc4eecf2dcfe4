"""Messaging channels. ``CONNECTORS`` is the only place channels are listed."""

from connectors.base import ChannelConnector
from connectors.cli import CliConnector
from connectors.facebook import FacebookConnector
from connectors.telegram import TelegramConnector

CONNECTORS: dict[str, type[ChannelConnector]] = {
    cls.name: cls for cls in (TelegramConnector, FacebookConnector, CliConnector)
}

__all__ = ["CONNECTORS", "ChannelConnector"]

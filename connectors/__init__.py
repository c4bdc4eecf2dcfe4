"""Messaging channels. ``CONNECTORS`` is the only place channels are listed."""

from connectors.base import ChannelConnector
from connectors.cli import CliConnector
from connectors.email import EmailConnector
from connectors.facebook import FacebookConnector
from connectors.telegram import TelegramConnector
from connectors.webchat import WebchatConnector
from connectors.zalo_bot import ZaloBotConnector
from connectors.zalo_oa import ZaloOAConnector

CONNECTORS: dict[str, type[ChannelConnector]] = {
    cls.name: cls for cls in (TelegramConnector, FacebookConnector, ZaloOAConnector, ZaloBotConnector, CliConnector, WebchatConnector,
                             EmailConnector)
}

__all__ = ["CONNECTORS", "ChannelConnector"]

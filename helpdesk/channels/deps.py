"""FastAPI dependencies for the channels' parts of the application's wiring."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from connectors import ChannelConnector
from helpdesk.channels.edge import InboundEdge


async def get_connectors(connection: HTTPConnection) -> Mapping[str, ChannelConnector]:
    """The channels that are on, by name."""
    return connection.app.state.wiring.connectors


async def get_inbound_edge(connection: HTTPConnection) -> InboundEdge:
    """Where the webhook edge stores inbound events."""
    return connection.app.state.wiring.inbound


ConnectorsDep = Annotated[Mapping[str, ChannelConnector], Depends(get_connectors)]
InboundEdgeDep = Annotated[InboundEdge, Depends(get_inbound_edge)]

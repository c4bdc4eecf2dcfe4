"""FastAPI dependencies for the channels' parts of the application's wiring."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from connectors import ChannelConnector
from helpdesk.channels.edge import InboundEdge
from helpdesk.jobs.runner import JobQueue


async def get_connectors(connection: HTTPConnection) -> Mapping[str, ChannelConnector]:
    """The channels that are on, by name."""
    return connection.app.state.wiring.connectors


async def get_inbound_edge(connection: HTTPConnection) -> InboundEdge:
    """Where the webhook edge stores inbound events."""
    return connection.app.state.wiring.inbound


ConnectorsDep = Annotated[Mapping[str, ChannelConnector], Depends(get_connectors)]
InboundEdgeDep = Annotated[InboundEdge, Depends(get_inbound_edge)]


@dataclass(frozen=True, slots=True)
class WebhookIntake:
    """What receiving a webhook needs of the wiring, as one dependency: the platforms' posts are the
    busiest route, and FastAPI's solving of each dependency costs every one of them (three of them
    were 12% of an acknowledgement's CPU)."""

    connectors: Mapping[str, ChannelConnector]
    inbound: InboundEdge
    jobs: JobQueue


async def get_webhook_intake(connection: HTTPConnection) -> WebhookIntake:
    """The channels that are on, where their events are stored and where their jobs go."""
    wiring = connection.app.state.wiring
    return WebhookIntake(wiring.connectors, wiring.inbound, wiring.worker)


WebhookIntakeDep = Annotated[WebhookIntake, Depends(get_webhook_intake)]

"""What every ``caredesk`` command group shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from helpdesk.core.config import Settings


def settings_or_exit(console: Console) -> Settings:
    """The settings, or a readable configuration error on ``console`` and exit status 2."""
    from pydantic import ValidationError

    from helpdesk.core.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        console.print(f"[red]Configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def port_taken(host: str, port: int) -> OSError | None:
    """Why ``host:port`` cannot be listened on (taken by another server, or not an address of this
    machine), or None when it is free. Binds and lets go at once, with SO_REUSEADDR as uvicorn binds,
    so a port only lingering in TIME_WAIT after a stop counts as free."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        return exc
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc
    return None

"""What every ``caredesk`` command group shares."""

from __future__ import annotations

import json
import os
from pathlib import Path
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


#: where ``caredesk serve`` says which address it listens on, for ``caredesk chat`` started in the same
#: directory (``make run PORT=8123`` in one terminal, ``caredesk chat`` in another); beside the
#: embedded default's database
SERVER_FILE = Path("var") / "caredesk-serve.json"


def local_url(host: str, port: int) -> str:
    """The URL a client on this machine reaches a server listening on ``host``:``port`` at."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def announce_server(host: str, port: int, path: Path = SERVER_FILE) -> Path | None:
    """Write this process's address to ``path`` (None if it cannot be written: only ``chat`` misses it)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": local_url(host, port), "pid": os.getpid()}), encoding="utf-8")
    except OSError:
        return None
    return path


def withdraw_server(path: Path) -> None:
    """Remove the announcement, if it is still this process's (a later server may have replaced it)."""
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def announced_server(path: Path = SERVER_FILE) -> str | None:
    """The URL a running ``caredesk serve`` of this directory announced, or None (no file, or its
    process is gone)."""
    try:
        announced = json.loads(path.read_text(encoding="utf-8"))
        url, pid = announced["url"], int(announced["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None  # left behind by a server that was killed
    except PermissionError:
        pass  # alive, another user's
    return url if isinstance(url, str) else None

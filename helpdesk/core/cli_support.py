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

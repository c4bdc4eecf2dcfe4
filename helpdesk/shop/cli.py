"""``caredesk orders``: import orders from the shop's order system and mark them delivered.

These commands only write the database; the running server (or ``caredesk worker``) sends the
care messages they schedule at its next check.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from helpdesk.core.cli_support import settings_or_exit

app = typer.Typer(help="Orders: import from the shop's order system, mark delivered (starts after-sales "
                       "care).", no_args_is_help=True, add_completion=False)
console = Console()


def _settings():
    return settings_or_exit(console)


def _engine(settings):
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate

    engine = make_database_engine(settings.database_url)
    migrate(engine)
    return engine


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True,
                                         help="CSV with code, phone, customer_name, status, delivered_at, "
                                              "items (sku:qty;sku:qty), serials.")],
) -> None:
    """Create or update orders from a CSV file; delivered rows start their care. All or nothing."""
    from sqlmodel import Session

    from helpdesk.care.service import CarePolicy
    from helpdesk.core.db import utcnow
    from helpdesk.shop import imports

    settings = _settings()
    policy, now = CarePolicy.from_settings(settings), utcnow()
    engine = _engine(settings)
    try:
        with Session(engine) as session:
            rows, errors = imports.read_orders_csv(file.read_bytes(), timezone=policy.timezone, now=now)
            errors += imports.check_rows_against_orders(session, rows)
            for error in sorted(errors, key=lambda e: e.line):
                console.print(f"[red]{file.name}:{error.line}:[/red] {error.error}")
            if imports.blocking(errors):
                console.print("Nothing was imported.")
                raise typer.Exit(1)
            if errors:
                console.print(f"{len(errors)} line(s) with a malformed phone or email were left out.")
            report = imports.import_orders(session, rows, policy=policy, now=now, actor_type="cli")
            session.commit()
    finally:
        engine.dispose()
    console.print(f"Imported {report.created} new and {report.updated} updated orders; "
                  f"{report.delivered} newly delivered, {report.care_scheduled} care messages scheduled.")


@app.command()
def delivered(
    code: Annotated[str, typer.Argument(help="The order code, e.g. DH100001.")],
    at: Annotated[str | None, typer.Option(help="When it was delivered (ISO; shop time without a zone). "
                                                "Default: now.")] = None,
    channel: Annotated[str | None, typer.Option(
        help="A channel to reach the customer on (with --external-id).")] = None,
    external_id: Annotated[str | None, typer.Option(help="The customer's id on that channel.")] = None,
) -> None:
    """Mark an order delivered and schedule its care sequence (a repeat schedules nothing twice)."""
    from pydantic import ValidationError
    from sqlmodel import Session

    from helpdesk.shop.schemas import OrderDelivered
    from helpdesk.care.service import CarePolicy, care_messages_for_order
    from helpdesk.core.db import utcnow
    from helpdesk.core.errors import CareDeskError
    from helpdesk.shop import service as shop
    from helpdesk.shop.flows import deliver_order

    settings = _settings()
    policy, now = CarePolicy.from_settings(settings), utcnow()
    try:
        request = OrderDelivered(delivered_at=at, channel=channel, external_id=external_id)
    except ValidationError as exc:
        console.print(f"[red]{exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from exc
    delivered_at: datetime | None = request.delivered_at
    if delivered_at is not None and delivered_at.tzinfo is None:
        delivered_at = delivered_at.replace(tzinfo=policy.timezone)
    if delivered_at is not None and delivered_at > now + timedelta(minutes=5):
        console.print("[red]--at is in the future[/red]")
        raise typer.Exit(2)
    engine = _engine(settings)
    try:
        with Session(engine) as session:
            order = shop.get_order(session, code)
            identity = (shop.identity_for_delivery(session, order, request.channel, request.external_id)
                        if request.channel else None)
            outcome = deliver_order(session, order, policy=policy, now=now, delivered_at=delivered_at,
                                    identity=identity, actor_type="cli")
            session.commit()
            waiting = not care_messages_for_order(session, order)
    except CareDeskError as exc:
        console.print(f"[red]{exc.reason}[/red]")
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    state = "marked delivered" if outcome.newly_delivered else "was already delivered"
    console.print(f"Order {outcome.order.code} {state}; {outcome.scheduled} care messages scheduled"
                  + ("; waiting for the customer to verify the order's phone in a chat." if waiting else "."))


@app.command("rebuild-purchases")
def rebuild_purchases() -> None:
    """Recount every buyer's purchases (customer_purchases, which the retention report reads) from the
    orders: after orders were loaded with plain SQL, or after CAREDESK_SHOP__TIMEZONE changed (the
    months each buyer bought in are counted in the shop's time zone; until then the report reads those
    buyers' orders, which is slower)."""
    from sqlalchemy import func, select

    from helpdesk.shop import purchases

    settings = _settings()
    engine = _engine(settings)
    try:
        with engine.begin() as connection:
            purchases.rebuild(connection, timezone=settings.shop.timezone)
            buyers = connection.execute(
                select(func.count()).select_from(purchases.CustomerPurchase)).scalar_one()
    finally:
        engine.dispose()
    console.print(f"customer_purchases rebuilt from the orders: {buyers} buyers, months counted in "
                  f"{settings.shop.timezone}.")

"""The ``caredesk`` command."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from helpdesk.shop.cli import app as orders_app
from helpdesk.core.aio import log_tasks
from helpdesk.core.cli_support import (announce_server, announced_server, local_url, port_taken, settings_or_exit,
                                       withdraw_server)
from helpdesk.training.cli import app as training_app
from nlu.cli import app as nlu_app

app = typer.Typer(help="CareDesk: omnichannel chatbot and live-chat helpdesk for after-sales care.",
                  no_args_is_help=True, add_completion=False)
app.add_typer(nlu_app, name="nlu", help="Train, test and try NLU models.")
app.add_typer(orders_app, name="orders", help="Import orders and mark them delivered (starts after-sales care).")
app.add_typer(training_app, name="training", help="The bot's training loop on the database: review, label, retrain, "
                                                   "compare, activate, export/import Rasa YAML.")
console = Console()


def _settings():
    return settings_or_exit(console)


def _setup_logging(level: str, fmt: str = "text", environment: str = "development") -> str:
    """Logging at ``level`` in ``fmt`` (CAREDESK_LOG_FORMAT: ``auto`` follows ``environment``); the
    format chosen."""
    from helpdesk.core.logs import log_format, setup_logging

    chosen = log_format(fmt, environment)
    setup_logging(level, chosen)
    return chosen


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(
        help="Address to listen on [default: CAREDESK_HOST, 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [default: CAREDESK_PORT, 8000].")] = None,
    prepare_first: Annotated[bool, typer.Option(
        "--prepare", help="Get the embedded default ready first, as `caredesk prepare` (what `make run` does); "
                          "a busy port is found before that work.")] = False,
) -> None:
    """Run the CareDesk server (webhooks, agent API, Rasa-compatible /model/parse)."""
    import uvicorn

    from helpdesk.app import create_app

    settings = _settings()
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    # before anything starts (the app, the worker child): otherwise a second server would get as far as
    # uvicorn's bind and stop there with its start-up half done
    taken = port_taken(host, port)
    if taken is not None:
        other = f"choose another port: `make run PORT={port + 1}` or `caredesk serve --port {port + 1}`"
        reason = (f"the port is already in use (another CareDesk, or another program). Stop it, or {other}"
                  if taken.errno == errno.EADDRINUSE else
                  f"this user may not listen on that port; {other}" if taken.errno == errno.EACCES else
                  f"{taken.strerror or taken} (is {host} an address of this machine?)")
        console.print(f"[red]Cannot serve on {host}:{port}:[/red] {reason}.")
        raise typer.Exit(1)
    if prepare_first:
        prepare(retrain=False)
    if settings.worker.mode == "auto":
        # messages are processed in a child process, so acknowledgements never wait for the bot
        settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"mode": "process"})})
    from helpdesk.core.logs import uvicorn_log_config

    fmt = _setup_logging(settings.log_level, settings.log_format, settings.environment)
    console.print(f"CareDesk listening on {local_url(host, port)}  "
                  f"(database: {settings.database_url.split('@')[-1]})")
    # so that `caredesk chat` in another terminal of this directory finds this server on whatever port
    announcement = announce_server(host, port)
    previous_handler = signal.getsignal(signal.SIGTERM)
    if announcement is not None:
        # uvicorn stops gracefully on SIGTERM and then raises it again with the handler found before
        # it started, so the process ends by the signal and no ``finally`` runs: this handler withdraws
        def withdraw_and_end(signum: int, _frame: object) -> None:
            withdraw_server(announcement)
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)

        signal.signal(signal.SIGTERM, withdraw_and_end)
    try:
        # proxy_headers=False: uvicorn would take X-Forwarded-For from any client on 127.0.0.1 as the
        # client's address; CareDesk believes it only from CAREDESK_TRUSTED_PROXIES (core.deps.client_address).
        # ws_max_size: uvicorn would otherwise take in web chat frames of up to 16 MiB before the socket
        # could refuse them; a larger frame closes the socket (1009)
        uvicorn.run(create_app(settings, freeze_heap=True), host=host, port=port, log_level=settings.log_level.lower(),
                    proxy_headers=False, ws_max_size=settings.limits.webchat_frame_bytes,
                    log_config=uvicorn_log_config(fmt))
    finally:
        signal.signal(signal.SIGTERM, previous_handler)
        if announcement is not None:
            withdraw_server(announcement)


@app.command()
def worker() -> None:
    """Run background jobs (outbox retries, unprocessed events) without serving HTTP."""
    from helpdesk.core.heap import freeze_startup_heap
    from helpdesk.wiring import Wiring, WorkerMode

    settings = _settings()
    if settings.worker.mode in ("auto", "external"):
        # follows the jobs a server in "external" mode publishes through Redis. "external" too: a
        # deployment that gives the servers and the workers one environment means its workers to be
        # what its servers hand jobs to, not more servers handing them on (nobody would run them)
        settings = settings.model_copy(update={"worker": settings.worker.model_copy(update={"mode": "worker"})})
    _setup_logging(settings.log_level, settings.log_format, settings.environment)

    async def run() -> None:
        wiring = Wiring(settings)
        if not settings.worker.http_port or wiring.mode == WorkerMode.CHILD:
            await work(wiring)
            return
        from helpdesk.ops.worker_http import WorkerHTTP

        # listening before start-up, which may wait for the database: /healthz answers at once, and
        # /readyz says 503 until the database, the model and Redis are there
        http = WorkerHTTP(wiring, settings.worker.http_host, settings.worker.http_port)
        await http.start()
        try:
            await work(wiring)
        finally:
            await http.stop()

    async def work(wiring: Wiring) -> None:
        await wiring.start()
        freeze_startup_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, log_tasks, logging.getLogger("helpdesk.worker"))
        waits = [asyncio.ensure_future(stop.wait())]
        if wiring.mode == WorkerMode.CHILD:
            # the serving process went away: nothing is left to work for
            waits.append(asyncio.ensure_future(wiring.broker.closed.wait()))
        else:
            console.print("CareDesk worker running; Ctrl+C to stop.")
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await wiring.stop()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


@app.command("migrate")
def migrate_command(
    wait: Annotated[float, typer.Option(help="Seconds to wait for the database to accept connections.")] = 60.0,
) -> None:
    """Prepare the database for this version (one-shot, once per deploy): migrations, the first admin and,
    on a fresh database, an active NLU model. Safe to run twice, or from several places at once."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.deploy import prepare_database
    from helpdesk.nlu_admin.bootstrap import ensure_active_model

    settings = _settings()
    _setup_logging(settings.log_level, settings.log_format, settings.environment)
    engine = make_database_engine(settings.database_url)
    try:
        deadline = time.monotonic() + wait
        pause = 0.5
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
                break
            except OperationalError as exc:
                if time.monotonic() + pause > deadline:
                    console.print(f"[red]The database is not reachable[/red] after {wait:.0f}s: {exc.orig}")
                    raise typer.Exit(1) from exc
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
        started = time.perf_counter()
        prepare_database(engine, settings.admin)
        console.print(f"Database at the newest migration ({time.perf_counter() - started:.1f}s); "
                      f"admin {settings.admin.email}.")
        started = time.perf_counter()
        version = ensure_active_model(engine, settings)
        if version is None:
            console.print(f"NLU: parsing goes to the Rasa server at {settings.nlu.rasa_url}.")
        else:
            console.print(f"NLU model {version} is active ({time.perf_counter() - started:.1f}s).")
    finally:
        engine.dispose()


def _migrate_and_admin(settings) -> None:
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.deploy import prepare_database

    engine = make_database_engine(settings.database_url)
    try:
        prepare_database(engine, settings.admin)
    finally:
        engine.dispose()


def _load_demo(settings) -> dict[str, int]:
    from sqlmodel import Session

    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.shop.service import load_shop_file

    engine = make_database_engine(settings.database_url)
    with Session(engine) as session:
        counts = load_shop_file(session, settings.data_dir / "demo" / "shop.yml")
        from helpdesk.care.service import CarePolicy, start_care_for_delivered_orders
        from helpdesk.core.db import utcnow
        from helpdesk.reports.demo_history import seed_demo_history

        counts["history_orders"] = seed_demo_history(session, utcnow())  # for the after-sales reports

        start_care_for_delivered_orders(session, CarePolicy.from_settings(settings), utcnow())
        session.commit()
    engine.dispose()
    return counts


@app.command()
def demo() -> None:
    """Load the demo shop (products, orders DH100001 and DH100002, warranty SN100001)."""
    settings = _settings()
    _migrate_and_admin(settings)
    counts = _load_demo(settings)
    console.print(f"Demo shop loaded: {counts['products']} products, {counts['orders']} orders, "
                  f"{counts['warranties']} new warranties.")


@app.command()
def prepare(
    retrain: Annotated[bool, typer.Option(help="Train a new model even if one is active.")] = False,
) -> None:
    """Get the embedded default ready: database, first admin, demo shop and a trained NLU model."""
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.nlu_admin.bootstrap import ensure_active_model, train_shipped_model
    from helpdesk.nlu_admin.store import DatabaseModelStore

    settings = _settings()
    _migrate_and_admin(settings)
    counts = _load_demo(settings)
    console.print(f"Database ready; demo shop: {counts['orders']} orders.")
    engine = make_database_engine(settings.database_url)
    try:
        store = DatabaseModelStore(engine, settings.nlu.models_dir)
        before = store.active_version()
        started = time.perf_counter()
        with console.status("Training the NLU model…"):
            if retrain:
                version = train_shipped_model(store, settings)
            else:
                version = ensure_active_model(engine, settings)
    finally:
        engine.dispose()
    if version is None:
        console.print(f"NLU: parsing goes to the Rasa server at {settings.nlu.rasa_url}.")
    elif version != before:
        console.print(f"NLU model {version} activated ({time.perf_counter() - started:.1f}s to train or import it).")
    else:
        console.print(f"NLU model {version} is active.")
    console.print(f"Admin login: {settings.admin.email}")


def _chat_server() -> tuple[str, str]:
    """Where ``caredesk chat`` finds the server, and how it knew: what the running ``caredesk serve`` of
    this directory announced (so ``make run PORT=…`` is found on its port), else the address the
    settings give (CAREDESK_HOST / CAREDESK_PORT, default 127.0.0.1:8000)."""
    from pydantic import ValidationError

    from helpdesk.core.config import Settings

    announced = announced_server()
    if announced is not None:
        return announced, "announced by the `caredesk serve` running in this directory"
    try:
        settings = Settings()
    except ValidationError:  # e.g. production without its secrets: only the address matters here
        return local_url("127.0.0.1", 8000), "the default address"
    return local_url(settings.host, settings.port), "CAREDESK_HOST / CAREDESK_PORT, default 127.0.0.1:8000"


@app.command()
def chat(
    server: Annotated[str | None, typer.Option(
        envvar="CAREDESK_SERVER",
        help="CareDesk server to talk to [default: the `caredesk serve` (`make run PORT=…`) running in "
             "this directory, else CAREDESK_HOST:CAREDESK_PORT, 127.0.0.1:8000].")] = None,
    sender: Annotated[str | None, typer.Option("--as", help="Your customer id on the cli channel.")] = None,
    name: Annotated[str, typer.Option(help="Your display name.")] = "Terminal customer",
    token: Annotated[str | None, typer.Option(
        envvar="CAREDESK_CHAT_TOKEN",
        help="An admin's bearer token, needed when the server is not on this machine.")] = None,
) -> None:
    """Chat with the bot as a customer, from the terminal (the built-in "cli" channel)."""
    import httpx

    from helpdesk.terminal_chat import ServerGone, TerminalChat

    how = "--server"
    if server is None:
        server, how = _chat_server()
    sender_id = sender or f"cli-{uuid.uuid4().hex[:10]}"
    headers = {"Authorization": f"Bearer {token}"} if token else None
    client = httpx.Client(base_url=server, timeout=10, headers=headers)
    session = TerminalChat(client, console, sender_id=sender_id, name=name, server=server)
    try:
        session.show_new_replies()
    except (ServerGone, httpx.HTTPError) as exc:
        console.print(f"[red]Cannot reach CareDesk at {server}[/red] ({how}; {exc}). Start it with `make run`, "
                      "or say where it is with --server.")
        raise typer.Exit(1) from exc
    if session.channel_off.is_set():
        raise typer.Exit(1)

    console.print(f"Chatting as [bold]{sender_id}[/bold] on {server}. Type /quit to leave.")
    session.start_polling()
    lines = sys.stdin if not sys.stdin.isatty() else iter(lambda: console.input("[bold]Bạn:[/bold] "), None)
    try:
        for line in lines:
            text = line.strip()
            if not text:
                continue
            if text in {"/quit", "/exit"} or session.channel_off.is_set():
                break
            if session.say(text):
                session.wait_for_reply()
    except (EOFError, KeyboardInterrupt):
        pass
    unsent = session.stop()
    client.close()
    if unsent:
        console.print(f"[red]Not sent[/red] (CareDesk at {server} did not answer): "
                      + "; ".join(f"“{text}”" for text in unsent))
        raise typer.Exit(1)
    if session.channel_off.is_set():
        raise typer.Exit(1)
    console.print("Bye!")


@app.command()
def channels() -> None:
    """Show which channels are on (they need credentials) and their webhook paths."""
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.wiring import build_connectors

    settings = _settings()
    engine = make_database_engine(settings.database_url)
    enabled = build_connectors(settings, engine)
    from connectors import CONNECTORS

    for name in CONNECTORS:
        state = "[green]on[/green]" if name in enabled else "[dim]off (no credentials)[/dim]"
        console.print(f"{name:10} {state}  POST /webhooks/{name.replace('_', '-')}")
    engine.dispose()


@app.command("set-webhook")
def set_webhook(
    channel: Annotated[str, typer.Argument(help="telegram or zalo_bot")],
    url: Annotated[str, typer.Argument(help="public HTTPS URL of /webhooks/<channel>")],
) -> None:
    """Register CareDesk's webhook (with its secret token) with Telegram or the Zalo Bot API."""
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.wiring import build_connectors

    settings = _settings()
    engine = make_database_engine(settings.database_url)
    connector = build_connectors(settings, engine).get(channel.replace("-", "_"))
    if connector is None or not hasattr(connector, "set_webhook"):
        console.print(f"[red]{channel} is not on, or has no webhook registration[/red] (see `caredesk channels`)")
        raise typer.Exit(2)

    async def register() -> None:
        try:
            await connector.set_webhook(url)
        finally:
            await connector.close()

    from connectors.base import DeliveryError

    try:
        asyncio.run(register())
    except DeliveryError as exc:
        console.print(f"[red]{channel} refused the webhook:[/red] {exc.reason}")
        raise typer.Exit(1) from exc
    console.print(f"{channel} webhook set to {url}")
    engine.dispose()


@app.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-seal the stored channel credentials with CAREDESK_SECRET_KEY after a key rotation (the old
    key in CAREDESK_SECRET_KEY_PREVIOUS until this has run on every database)."""
    from helpdesk.channels.credentials import reseal_credentials
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.crypto import secret_box

    from sqlmodel import Session

    from helpdesk.push.service import reseal_vapid_key

    settings = _settings()
    engine = make_database_engine(settings.database_url)
    try:
        resealed, unreadable = reseal_credentials(engine, secret_box(settings))
        with Session(engine) as session:  # the Web Push key pair, if this server made one
            try:
                if reseal_vapid_key(session, secret_box(settings)):
                    resealed.append("web push key")
                session.commit()
            except ValueError:
                unreadable.append("web push key")
    finally:
        engine.dispose()
    console.print(f"Re-sealed with the current key: {', '.join(resealed) or 'nothing to do'}.")
    if unreadable:
        console.print(f"[red]Opened by none of the keys (left as they are):[/red] {', '.join(unreadable)}. "
                      "Put the key that sealed them in CAREDESK_SECRET_KEY_PREVIOUS and run this again.")
        raise typer.Exit(1)


@app.command("create-agent")
def create_agent(
    email: str, name: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
    role: Annotated[str, typer.Option(help="agent, supervisor or admin")] = "agent",
    team: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Create an agent account."""
    from sqlmodel import Session

    from helpdesk.agents.models import AgentRole
    from helpdesk.agents.service import create_agent as create
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate
    from helpdesk.core.errors import CareDeskError

    settings = _settings()
    engine = make_database_engine(settings.database_url)
    migrate(engine)
    try:
        role_value = AgentRole(role)
    except ValueError:
        console.print(f"[red]Unknown role {role!r}[/red]; use agent, supervisor or admin.")
        raise typer.Exit(2)
    with Session(engine) as session:
        try:
            agent = create(session, email=email, name=name, password=password, role=role_value, team=team)
        except CareDeskError as exc:
            console.print(f"[red]{exc.reason}[/red]")
            raise typer.Exit(1) from exc
        session.commit()
        console.print(f"Agent {agent.email} created (id {agent.id}).")


__all__ = ["app", "Path"]

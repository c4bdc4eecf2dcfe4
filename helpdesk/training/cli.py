"""``caredesk training``: the admin training loop from the command line, on the database.

Review the messages the bot missed, label them, retrain with the side-by-side comparison, activate
or roll back a model, and export or import the training set as Rasa YAML. A retrain runs in this
process; every server running against the same database follows an activation within a second
(models live in the database; the models directory only caches them). Whoever can run these
commands has the server's configuration, so they act as an admin (the change log names the
command line).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from helpdesk.core.cli_support import settings_or_exit
from rich.table import Table

app = typer.Typer(help="The bot's training loop on the database: review, label, retrain, compare, activate, "
                       "export and import Rasa YAML.", no_args_is_help=True, add_completion=False)
console = Console()
error_console = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]


def _settings():
    return settings_or_exit(error_console)


@contextmanager
def _database() -> Iterator[tuple[Any, Any]]:
    """(settings, engine) with the schema up to date and the training set seeded; domain errors
    become a one-line message and exit status 1."""
    from helpdesk.channels.ledger import make_database_engine
    from helpdesk.core.db import migrate
    from helpdesk.core.errors import CareDeskError
    from helpdesk.training import dataset

    settings = _settings()
    engine = make_database_engine(settings.database_url)
    try:
        migrate(engine)
        dataset.ensure_seeded(engine, settings.data_dir)
        yield settings, engine
    except CareDeskError as exc:
        error_console.print(f"[red]error:[/red] {exc.reason}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()


def _store(settings, engine):
    """The database's models (cached in the models directory); an older install's file store in that
    directory is imported first."""
    from helpdesk.nlu_admin.store import DatabaseModelStore

    store = DatabaseModelStore(engine, settings.nlu.models_dir)
    store.adopt_file_store()
    return store


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _actor():
    from helpdesk.training.service import CLI_ACTOR

    return CLI_ACTOR


# ---------------------------------------------------------------------------------------------
# Review queue


@app.command()
def review(
    channel: Annotated[str | None, typer.Option(help="Only this channel (telegram, facebook, zalo_oa, …).")] = None,
    reason: Annotated[str | None, typer.Option(help="low_confidence, fallback, handoff or flagged.")] = None,
    days: Annotated[int | None, typer.Option(min=1, help="Only messages of the last N days.")] = None,
    status: Annotated[str, typer.Option(help="open, labelled or dismissed.")] = "open",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOption = False,
) -> None:
    """List the messages the bot may have misunderstood, grouped, newest first."""
    from datetime import timedelta

    from sqlmodel import Session

    from helpdesk.core.db import utcnow
    from helpdesk.training import review as queue

    if reason is not None and reason not in ("low_confidence", "fallback", "handoff", "flagged"):
        error_console.print("[red]error:[/red] --reason is one of low_confidence, fallback, handoff, flagged")
        raise typer.Exit(2)
    if status not in ("open", "labelled", "dismissed"):
        error_console.print("[red]error:[/red] --status is one of open, labelled, dismissed")
        raise typer.Exit(2)
    with _database() as (_, engine):
        queue.collect(engine)
        since = utcnow() - timedelta(days=days) if days else None
        with Session(engine) as session:
            groups, count = queue.list_groups(
                session, queue.ReviewFilter(status=status, channel=channel, reason=reason, since=since), limit)
    if as_json:
        _print_json({"count": count, "data": [{
            "id": g.id, "count": g.count, "newest_at": g.newest_at, "texts": g.texts, "reasons": g.reasons,
            "channels": g.channels, "predicted": g.predicted,
            "message_ids": [item.message_id for item in g.items]} for g in groups]})
        return
    if not groups:
        console.print("Nothing to review.")
        return
    table = Table("group", "messages", "reasons", "bot read it as", "text", title=f"{count} groups")
    for g in groups:
        table.add_row(g.id, str(g.count), ", ".join(g.reasons), ", ".join(g.predicted), g.texts[0] if g.texts else "")
    console.print(table)


@app.command()
def label(
    target: Annotated[str, typer.Argument(help="A group id from `review` (g…) or a customer message id.")],
    intent: Annotated[str, typer.Argument(help="The intent it means (a new name creates the intent).")],
    entity: Annotated[list[str] | None, typer.Option(
        "--entity", help="Mark an entity as NAME=TEXT (the text as written in the message); repeatable.")] = None,
) -> None:
    """Label a group of messages (or one message) with an intent: it becomes a training example."""
    from sqlmodel import Session

    from helpdesk.training import review as queue

    marks = []
    for spec in entity or []:
        name, sep, text = spec.partition("=")
        if not sep or not name.strip() or not text.strip():
            error_console.print(f"[red]error:[/red] --entity takes NAME=TEXT, got {spec!r}")
            raise typer.Exit(2)
        marks.append({"entity": name.strip(), "text": text.strip()})
    with _database() as (_, engine):
        queue.collect(engine)
        with Session(engine) as session:
            outcome = queue.label(session, _actor(), target, intent, marks)
            session.commit()
    console.print(f"{outcome.messages} messages labelled {outcome.intent}: {len(outcome.added)} examples added, "
                  f"{len(outcome.moved)} moved, {len(outcome.unchanged)} already there.", highlight=False)
    for skipped in outcome.skipped:
        console.print(f"[yellow]skipped:[/yellow] {skipped}", highlight=False)


@app.command()
def dismiss(target: Annotated[str, typer.Argument(help="A group id (g…) or a customer message id.")]) -> None:
    """Take a group (or one message) out of the review queue without labelling it."""
    from sqlmodel import Session

    from helpdesk.training import review as queue

    with _database() as (_, engine):
        queue.collect(engine)
        with Session(engine) as session:
            count = queue.dismiss(session, _actor(), target)
            session.commit()
    console.print(f"{count} messages dismissed.")


# ---------------------------------------------------------------------------------------------
# Examples


@app.command()
def examples(
    q: Annotated[str, typer.Option("--search", "-q", help="Text to find (case and diacritics ignored).")] = "",
    intent: Annotated[str | None, typer.Option(help="Only this intent.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=5000)] = 50,
    as_json: JsonOption = False,
) -> None:
    """Search the training examples."""
    from sqlmodel import Session

    from helpdesk.training import service

    with _database() as (_, engine), Session(engine) as session:
        views, count = service.search_examples(session, q, intent, limit)
        rows = [{"id": v.example.id, "intent": v.intent, "text": v.example.text, "entities": v.example.entities,
                 "holdout": v.example.holdout, "source": v.example.source} for v in views]
    if as_json:
        _print_json({"count": count, "data": rows})
        return
    table = Table("id", "intent", "text", "", title=f"{count} examples")
    for row in rows:
        table.add_row(str(row["id"]), row["intent"], row["text"], "held out" if row["holdout"] else "")
    console.print(table)


@app.command("add-example")
def add_example(
    intent: Annotated[str, typer.Argument(help="Its intent (a new name creates the intent).")],
    text: Annotated[str, typer.Argument(help="The example's text.")],
) -> None:
    """Add a training example."""
    from sqlmodel import Session

    from helpdesk.training import service

    with _database() as (_, engine), Session(engine) as session:
        view = service.add_example(session, _actor(), intent, text)
        session.commit()
        example_id, held = view.example.id, view.example.holdout
    console.print(f"example {example_id} added to {intent}" + (" (held out to test candidates)" if held else ""),
                  highlight=False)


@app.command()
def changes(limit: Annotated[int, typer.Option(min=1, max=1000)] = 30, as_json: JsonOption = False) -> None:
    """The training change log (who, when, what), newest first."""
    from sqlmodel import Session

    from helpdesk.training import service

    with _database() as (_, engine), Session(engine) as session:
        rows, count = service.list_changes(session, limit)
        entries = [{"id": r.id, "at": r.created_at, "actor": r.actor_type if r.actor_id is None
                    else f"{r.actor_type} {r.actor_id}", "action": r.action, "subject": r.subject,
                    "details": r.details} for r in rows]
    if as_json:
        _print_json({"count": count, "data": entries})
        return
    table = Table("when", "who", "what", "subject")
    for entry in entries:
        table.add_row(f"{entry['at']:%Y-%m-%d %H:%M:%S}", entry["actor"], entry["action"], entry["subject"])
    console.print(table)


# ---------------------------------------------------------------------------------------------
# Rasa YAML


@app.command("export")
def export_file(
    file: Annotated[Path | None, typer.Argument(help="Where to write (default: standard output).")] = None,
) -> None:
    """Write the whole training set as one Rasa 3 YAML file (`rasa train nlu` reads it)."""
    from sqlmodel import Session

    from helpdesk.training import dataset

    with _database() as (_, engine), Session(engine) as session:
        text = dataset.export_yaml(session)
    if file is None or str(file) == "-":
        sys.stdout.write(text)
        return
    file.write_text(text, encoding="utf-8")
    console.print(f"training set written to {file}", highlight=False)


@app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A Rasa NLU YAML file.")],
    mode: Annotated[str, typer.Option(help="merge: add what is new; replace: make the set exactly the file.")] = "merge",
) -> None:
    """Load a Rasa YAML file into the training set (nothing changes when the file is invalid)."""
    from sqlmodel import Session

    from helpdesk.training import dataset

    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        error_console.print(f"[red]error:[/red] {file} is not UTF-8 text")
        raise typer.Exit(1) from None
    with _database() as (_, engine), Session(engine) as session:
        summary = dataset.import_yaml(session, _actor(), text, mode)
        session.commit()
    console.print(f"{summary.mode}: {summary.intents} intents; {summary.added} added, {summary.updated} updated, "
                  f"{summary.removed} removed, {summary.unchanged} unchanged.", highlight=False)
    for skipped in summary.skipped:
        console.print(f"[yellow]skipped[/yellow] {skipped['text']!r} ({skipped['intent']}): already an example of "
                      f"{skipped['existing_intent']}", highlight=False)


# ---------------------------------------------------------------------------------------------
# Retraining and models


def _verdict_line(comparison: dict[str, Any]) -> str:
    def score(section: dict[str, Any], who: str) -> str:
        values = section.get(who)
        return "–" if not values else f"{values['accuracy']:.1%} (macro F1 {values['macro_f1']:.3f})"

    lines = [f"verdict: {comparison['verdict'].upper()}" + (f" — {'; '.join(comparison['reasons'])}"
                                                          if comparison["reasons"] else "")]
    for name in ("holdout", "review"):
        section = comparison[name]
        if section["n"]:
            lines.append(f"  {name:8} {section['n']:5} texts  active {score(section, 'active')}  "
                         f"candidate {score(section, 'candidate')}")
    flips = comparison["flips"]
    lines.append(f"  predictions that flip: {flips['better_count']} now right, {flips['worse_count']} now wrong")
    lines.extend(f"  note: {note}" for note in comparison["notes"])
    return "\n".join(lines)


@app.command()
def train(
    activate: Annotated[bool, typer.Option(
        "--activate", help="Activate the candidate unless the comparison says it is worse.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Retrain, compare the candidate with the active model side by side, and store it (waits, showing progress).

    The candidate learns every example but the held-out split; it is tested on that split and on
    the labelled review messages.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from helpdesk.training import jobs

    with _database() as (settings, engine):
        store = _store(settings, engine)
        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=error_console,
                      transient=True, disable=as_json) as progress:
            task = progress.add_task("preparing", total=1.0)
            job = jobs.run_job_here(engine, store, _actor(),
                                    lambda stage, fraction: progress.update(task, description=stage, completed=fraction))
        activated = None
        if activate and job.comparison and job.comparison["verdict"] != "worse":
            jobs.activate_stored(engine, store, _actor(), job.candidate_version)
            activated = job.candidate_version
    if as_json:
        _print_json({"job_id": job.id, "status": job.status, "candidate_version": job.candidate_version,
                     "baseline_version": job.baseline_version, "activated": activated, "comparison": job.comparison})
        return
    console.print(f"job {job.id}: candidate [bold]{job.candidate_version}[/] trained on {job.n_train} examples, "
                  f"tested on {job.n_holdout} held-out and {job.n_review} labelled messages", highlight=False)
    console.print(_verdict_line(job.comparison), highlight=False)
    if activated:
        console.print(f"activated {activated}", highlight=False)
    elif activate:
        console.print("[yellow]not activated: the candidate is worse than the active model[/yellow]")


@app.command()
def models(as_json: JsonOption = False) -> None:
    """Stored model versions with their metrics, newest first; * marks the active one."""
    from helpdesk.training import jobs

    with _database() as (settings, engine):
        views = jobs.list_models(engine, _store(settings, engine))
    if as_json:
        _print_json({"active": next((v.version for v in views if v.active), None),
                     "data": [view.__dict__ for view in views]})
        return
    table = Table("", "version", "created", "accuracy", "macro F1", "verdict", "decision")
    for view in views:
        metrics = view.metrics or {}
        table.add_row("*" if view.active else "", view.version, view.created_at[:19],
                      "" if metrics.get("accuracy") is None else f"{metrics['accuracy']:.4f}",
                      "" if metrics.get("macro_f1") is None else f"{metrics['macro_f1']:.4f}",
                      metrics.get("verdict") or "", view.decision or "")
    console.print(table)


@app.command("activate")
def activate_version(version: Annotated[str, typer.Argument(help="The version to answer with (also how to roll back).")]) -> None:
    """Make a stored version the active model; running servers switch to it within a second."""
    from helpdesk.training import jobs

    with _database() as (settings, engine):
        previous = jobs.activate_stored(engine, _store(settings, engine), _actor(), version)
    console.print(f"active model: {version} (was {previous or 'none'})", highlight=False)


@app.command("discard")
def discard_version(version: Annotated[str, typer.Argument(help="A version that is not active.")]) -> None:
    """Delete a stored model version that is not active."""
    from helpdesk.training import jobs

    with _database() as (settings, engine):
        jobs.discard_stored(engine, _store(settings, engine), _actor(), version)
    console.print(f"discarded {version}", highlight=False)

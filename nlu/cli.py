"""``caredesk nlu``: train, test and try NLU models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from nlu.catalog import load_training_data_with_catalogs
from nlu.model import Interpreter, ModelLoadError, load_model, read_model_metadata, train_model
from nlu.pipeline import NLUConfigError
from nlu.store import ModelStore
from nlu.training_data import TrainingDataError, load_training_data

app = typer.Typer(help="Train, evaluate and try the CareDesk NLU models.", no_args_is_help=True)
console = Console()
error_console = Console(stderr=True)

ModelsDirOption = Annotated[
    Path, typer.Option("--models-dir", envvar="CAREDESK_NLU__MODELS_DIR", help="Model store directory.")
]
ModelOption = Annotated[
    Path | None, typer.Option("--model", help="Model directory (default: the store's active model).")
]


def fail(message: str) -> NoReturn:
    """Print a one-line error and exit with status 2."""
    error_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def open_interpreter(model: Path | None, models_dir: Path) -> Interpreter:
    """Load ``model`` or the store's active model, exiting with a clear message on failure."""
    try:
        return load_model(model) if model is not None else ModelStore(models_dir).load_active()
    except ModelLoadError as exc:
        fail(str(exc))


@app.command()
def train(
    data: Annotated[list[Path], typer.Option("--data", help="Training data file or directory (repeatable).")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Model directory to write (default: add to the store).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Pipeline config.yml (default: built-in).")
    ] = None,
    models_dir: ModelsDirOption = Path("var/models"),
    activate: Annotated[bool, typer.Option("--activate", help="Activate the new store version.")] = False,
    catalog: Annotated[
        list[Path] | None,
        typer.Option("--catalog", help="Shop YAML file whose products become the 'product' lookup table."),
    ] = None,
) -> None:
    """Train a model from Rasa YAML data (and the shop's catalog, when given)."""
    try:
        training_data = load_training_data_with_catalogs(data, catalog or [])
    except TrainingDataError as exc:
        fail(str(exc))
    if not training_data.examples:
        fail("no intent examples found in " + ", ".join(map(str, data)))
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("training", total=1.0)

        def report(stage: str, fraction: float) -> None:
            """Show the training stage on the progress bar."""
            progress.update(task, description=stage, completed=fraction)

        try:
            if out is not None:
                model_dir = train_model(training_data, out, config_path=config, progress=report)
                version = load_model(model_dir).version
            else:
                store = ModelStore(models_dir)
                version = store.train_and_add(training_data, config_path=config, progress=report)
                if activate or store.active_version() is None:
                    store.activate(version)
                model_dir = store.model_path(version)
        except NLUConfigError as exc:
            fail(str(exc))
    intents = len(training_data.intents)
    console.print(
        f"trained model [bold]{version}[/] ({len(training_data.examples)} examples, {intents} intents) "
        f"-> {model_dir}",
        highlight=False,
    )
    _print_training_report(read_model_metadata(model_dir).get("training_report") or {})


def _print_training_report(report: dict[str, Any]) -> None:
    """Print the calibration and the fallback thresholds chosen at training time."""
    calibration, fallback = report.get("calibration"), report.get("fallback")
    if calibration:
        console.print(
            f"confidence calibration: temperature {calibration['temperature']}, held-out ECE "
            f"{calibration['ece_uncalibrated']:.4f} uncalibrated -> {calibration['ece']:.4f} "
            f"({calibration['held_out_examples']} held-out answers)",
            highlight=False,
        )
    if fallback:
        oos = fallback.get("out_of_scope_threshold")
        line = f"fallback threshold {fallback['threshold']:.4f} ({fallback['threshold_source']}"
        if "chosen_threshold" in fallback:
            line += f"; {fallback['chosen_for']}: {fallback['chosen_threshold']:.4f}"
        line += ")"
        if "held_out_precision" in fallback:
            line += (
                f": held-out precision {fallback['held_out_precision']}, "
                f"fallback rate {fallback['held_out_fallback_rate']:.3f}"
            )
        if oos is not None:
            features = (calibration or {}).get("out_of_scope_features")
            reads = f" ({' + '.join(features)})" if features else ""
            line += f"; out-of-scope score{reads} threshold {oos:.4f}"
            if "pseudo_out_of_scope_recall" in fallback:
                line += (
                    f" (catches {fallback['pseudo_out_of_scope_recall']:.3f} of "
                    f"{fallback['pseudo_out_of_scope_examples']} messages of intents held out)"
                )
        console.print(line, highlight=False)


def _report_table(report: dict[str, Any]) -> None:
    intent = report["intent"]
    console.print(
        f"intent accuracy {intent['accuracy']:.4f}  macro F1 {intent['macro_f1']:.4f}  "
        f"weighted F1 {intent['weighted_f1']:.4f}  ({intent['n_examples']} examples, "
        f"fallback rate {report['fallback_rate']:.3f}, accuracy without fallback "
        f"{report['intent_without_fallback']['accuracy']:.4f})",
        highlight=False,
    )
    calibration = report.get("calibration") or {}
    if "ece" in calibration:
        before = calibration.get("ece_uncalibrated")
        console.print(
            f"confidence calibration: ECE {calibration['ece']:.4f} ({calibration['bins']} bins)"
            + ("" if before is None else f", uncalibrated {before:.4f}"),
            highlight=False,
        )
    table = Table("intent", "precision", "recall", "f1", "support")
    for name, scores in sorted(intent["per_intent"].items()):
        table.add_row(
            name,
            f"{scores['precision']:.3f}",
            f"{scores['recall']:.3f}",
            f"{scores['f1']:.3f}",
            str(scores["support"]),
        )
    console.print(table)
    if intent["confused"]:
        confused = Table("intent", "predicted as", "count", title="most confused")
        for pair in intent["confused"]:
            confused.add_row(pair["intent"], pair["predicted"], str(pair["count"]))
        console.print(confused)
    entities = report["entities"]
    console.print(
        f"entities: precision {entities['precision']:.4f}  recall {entities['recall']:.4f}  "
        f"F1 {entities['f1']:.4f} (micro)  macro F1 {entities['macro_f1']:.4f}  (support {entities['support']})",
        highlight=False,
    )
    if entities["per_entity"]:
        table = Table("entity", "precision", "recall", "f1", "support")
        for name, scores in entities["per_entity"].items():
            table.add_row(
                name,
                f"{scores['precision']:.3f}",
                f"{scores['recall']:.3f}",
                f"{scores['f1']:.3f}",
                str(scores["support"]),
            )
        console.print(table)


@app.command()
def test(
    data: Annotated[Path, typer.Option("--data", help="Test data file or directory (Rasa YAML).")],
    model: ModelOption = None,
    models_dir: ModelsDirOption = Path("var/models"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    errors: Annotated[bool, typer.Option("--errors", help="Include misclassified examples.")] = False,
) -> None:
    """Evaluate a model on annotated data (Rasa-style report)."""
    from nlu.evaluation import evaluate

    try:
        test_data = load_training_data([data])
    except TrainingDataError as exc:
        fail(str(exc))
    if not test_data.examples:
        fail(f"no intent examples found in {data}")
    interpreter = open_interpreter(model, models_dir)
    report = evaluate(interpreter, test_data)
    report["model_version"] = interpreter.version
    if not errors:
        report.pop("errors")
        report.pop("entity_errors")
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    console.print(f"model {interpreter.version}", highlight=False)
    _report_table(report)
    for error in report.get("errors", []):
        console.print(
            f"  {error['intent']} -> {error['predicted']} ({error['confidence']:.2f}): {error['text']}",
            highlight=False,
        )
    for error in report.get("entity_errors", []):
        missed = ", ".join(f"{e['text']!r} ({e['entity']})" for e in error["missed"]) or "-"
        spurious = ", ".join(f"{e['text']!r} ({e['entity']})" for e in error["spurious"]) or "-"
        console.print(f"  entities missed {missed}; not expected {spurious}: {error['text']}", highlight=False)


@app.command()
def parse(
    text: Annotated[str, typer.Argument(help="Message to interpret.")],
    model: ModelOption = None,
    models_dir: ModelsDirOption = Path("var/models"),
) -> None:
    """Interpret one message and print Rasa's parse JSON."""
    interpreter = open_interpreter(model, models_dir)
    typer.echo(json.dumps(interpreter.parse(text).to_rasa(), ensure_ascii=False, indent=2))


@app.command("models")
def list_models(models_dir: ModelsDirOption = Path("var/models")) -> None:
    """List the versions in the model store."""
    store = ModelStore(models_dir)
    infos = store.versions()
    if not infos:
        console.print(f"no models in {models_dir}", highlight=False)
        return
    table = Table("", "version", "created", "intents", "accuracy")
    for info in infos:
        accuracy = (info.metrics or {}).get("accuracy")
        table.add_row(
            "*" if info.active else "",
            info.version,
            info.created_at,
            str(len(info.intents)),
            "" if accuracy is None else f"{accuracy:.4f}",
        )
    console.print(table)


@app.command()
def activate(
    version: Annotated[str, typer.Argument(help="Version to make active.")],
    models_dir: ModelsDirOption = Path("var/models"),
) -> None:
    """Make a stored version the active model."""
    try:
        ModelStore(models_dir).activate(version)
    except (KeyError, ValueError) as exc:
        fail(str(exc.args[0]))
    console.print(f"active model: {version}", highlight=False)

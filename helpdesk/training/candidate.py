"""Training a candidate model, run in a worker process (or a thread).

Kept apart from the rest of the package so that the worker process imports only the NLU library:
no web framework, no database. The candidate is trained into a directory of its own under the
models directory; the parent process then stores it in the database
(``DatabaseModelStore.add``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from nlu import Interpreter, TrainingData, load_model, train_model

Report = Callable[[str, float], None]


class LoadsModels(Protocol):
    """What ``predict`` needs of a model store: loading a version."""

    def load(self, version: str) -> Interpreter:
        """Load one version."""

#: the progress queue of this worker process (set by ``init_worker``)
_progress_queue: Any = None
#: share of the candidate's work that is training; the rest is predicting the test texts
TRAIN_SHARE = 0.9


def init_worker(queue: Any) -> None:
    """Process-pool initializer: remember the queue progress goes back through."""
    global _progress_queue
    _progress_queue = queue


#: a tiny set trained once in a fresh worker: every import and first-call cost of the pipeline is
#: paid before the admin's first retrain, not during it
_WARM_UP_DATA = {"greet": ["xin chào", "chào shop", "hello", "hi there"],
                 "thank": ["cảm ơn", "cám ơn shop", "thanks", "thank you"]}


def warm_up() -> int:
    """Run once in a fresh worker process so the first retrain finds it ready; returns its pid."""
    import os

    from nlu import TrainingExample

    data = TrainingData(examples=[TrainingExample(text, intent) for intent, texts in _WARM_UP_DATA.items()
                                  for text in texts])
    with tempfile.TemporaryDirectory(prefix="caredesk-warm-up-") as directory:
        load_model(train_model(data, Path(directory) / "model")).parse_batch(["xin chào shop"])
    return os.getpid()


def _queue_reporter(job_id: int) -> Report:
    def report(stage: str, fraction: float) -> None:
        if _progress_queue is not None:
            _progress_queue.put((job_id, stage, fraction))

    return report


#: what a model reads in a test text: intent, confidence, and its entities as (entity, start, end)
Prediction = tuple[str, float, list[tuple[str, int, int]]]


def predictions(interpreter: Interpreter, texts: list[str]) -> list[Prediction]:
    """The intent, confidence and entity spans a loaded model gives each text."""
    return [(result.intent.name, result.intent.confidence,
             [(entity.entity, entity.start, entity.end) for entity in result.entities])
            for result in interpreter.parse_batch(texts)]


def predict(store: LoadsModels, version: str, texts: list[str]) -> list[Prediction]:
    """The intent, confidence and entity spans a stored model gives each text."""
    if not texts:
        return []
    return predictions(store.load(version), texts)


def train_candidate(job_id: int, training_root: str, data: TrainingData, texts: list[str],
                    config_path: str | None = None, report: Report | None = None) -> dict[str, Any]:
    """Train a candidate into a new directory under ``training_root`` and predict the test texts with
    it; returns its version, predictions and directory (which the caller stores, then deletes)."""
    report = report or _queue_reporter(job_id)
    Path(training_root).mkdir(parents=True, exist_ok=True)
    model_dir = Path(tempfile.mkdtemp(prefix=f"job-{job_id}-", dir=training_root)) / "model"
    train_model(data, model_dir, config_path=config_path,
                progress=lambda stage, fraction: report(stage, fraction * TRAIN_SHARE))
    report("testing the candidate", TRAIN_SHARE)
    interpreter = load_model(model_dir)
    tested = predictions(interpreter, texts) if texts else []
    report("candidate tested", 1.0)
    return {"version": interpreter.version, "predictions": tested, "model_dir": str(model_dir)}

"""Training a candidate model, run in a worker process (or a thread).

Kept apart from the rest of the package so that the worker process imports only the NLU library:
no web framework, no database.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlu import Interpreter, ModelStore, TrainingData

Report = Callable[[str, float], None]

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
    import tempfile

    from nlu import TrainingExample, load_model, train_model

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


def predictions(interpreter: Interpreter, texts: list[str]) -> list[tuple[str, float]]:
    """The intent and confidence a loaded model gives each text."""
    return [(result.intent.name, result.intent.confidence) for result in interpreter.parse_batch(texts)]


def predict(store: ModelStore, version: str, texts: list[str]) -> list[tuple[str, float]]:
    """The intent and confidence a stored model gives each text."""
    if not texts:
        return []
    return predictions(store.load(version), texts)


def train_candidate(job_id: int, models_dir: str, data: TrainingData, texts: list[str],
                    config_path: str | None = None, report: Report | None = None) -> dict[str, Any]:
    """Train a candidate into the model store and predict the test texts with it."""
    report = report or _queue_reporter(job_id)
    store = ModelStore(Path(models_dir))
    version = store.train_and_add(
        data, config_path=config_path, progress=lambda stage, fraction: report(stage, fraction * TRAIN_SHARE))
    report("testing the candidate", TRAIN_SHARE)
    predictions = predict(store, version, texts)
    report("candidate tested", 1.0)
    return {"version": version, "predictions": predictions}

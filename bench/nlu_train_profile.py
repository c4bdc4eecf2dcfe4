"""Where the seconds of NLU training go: each pipeline component's training and batch processing,
and inside the entity CRF its featurising and crfsuite's training, timed in wall-clock and in CPU
time (``time.process_time``, which a machine loaded by other work does not inflate). One figure a
line.

    python bench/nlu_train_profile.py [--sets snips] [--bench-dir DIR] [--config FILE]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from nlu import load_training_data
from nlu.components import crf
from nlu.message import Message
from nlu.model import training_output_needed
from nlu.pipeline import build_components, load_pipeline_config

DEFAULT_BENCH_DIR = Path(__file__).resolve().parents[2] / "shared" / "nlu-bench"

totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])


@contextmanager
def timed(stage: str):
    """Add the wall-clock and CPU seconds of the block to ``stage``."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        totals[stage][0] += time.perf_counter() - wall
        totals[stage][1] += time.process_time() - cpu


def instrument_crf() -> None:
    """Time the CRF's featurising and crfsuite's training separately (wrapping module functions)."""
    features, train = crf.CRFEntityExtractor._features, crf._train_tagger

    def timed_features(self, *args, **kwargs):
        with timed("  CRF featurising"):
            return features(self, *args, **kwargs)

    def timed_train(*args, **kwargs):
        with timed("  CRF crfsuite training"):
            return train(*args, **kwargs)

    crf.CRFEntityExtractor._features = timed_features
    crf._train_tagger = timed_train


def profile_set(name: str, bench_dir: Path, config: Path | None) -> None:
    """Train the pipeline on one set stage by stage and print each stage's seconds."""
    totals.clear()
    data = load_training_data([bench_dir / name / "train.yml"])
    components = build_components(load_pipeline_config(config))
    messages = [Message.from_example(example) for example in data.examples]
    gc.collect()
    with timed("total"):
        for position, component in enumerate(components):
            with timed(f"{component.name}.train"):
                component.train(messages, data)
            if training_output_needed(components, position):
                with timed(f"{component.name}.process_batch"):
                    component.process_batch(messages)
    for stage, (wall, cpu) in totals.items():
        print(f"{name} {stage} wall seconds: {wall:.2f}")
        print(f"{name} {stage} CPU seconds: {cpu:.2f}")


def main(argv: list[str] | None = None) -> int:
    """Run the profile."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH_DIR)
    parser.add_argument("--sets", default="snips", help="comma-separated set names (default: snips)")
    parser.add_argument("--config", type=Path, default=None, help="pipeline config.yml (default: built-in)")
    args = parser.parse_args(argv)
    instrument_crf()
    for name in args.sets.split(","):
        if not (args.bench_dir / name / "train.yml").is_file():
            print(f"unknown set {name} under {args.bench_dir}", file=sys.stderr)
            return 2
        profile_set(name, args.bench_dir, args.config)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Score the shipped NLU model on held-out customer messages written apart from the training data.

Trains once on data/nlu plus the demo shop's catalog (as `caredesk prepare` and
tests/nlu/test_broad_heldout.py do), then for each Rasa YAML file given prints, one figure a line:
intent accuracy with the fallback on (what customers see), accuracy without it (the classifier's top
real intent), the fallback rate, accuracy counting a fallback on an out_of_scope message as right, and
the most confused (gold -> predicted) pairs. ``--misses`` also lists every miss with its confidence,
for analysing a development half (never the final test half).

    python bench/fresh_heldout.py var/fresh/dev.yml [var/fresh/test.yml] [--misses]
    python bench/fresh_heldout.py --data-dir data/nlu --catalog data/demo/shop.yml FILE...
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from nlu import load_model, load_training_data, train_model  # noqa: E402
from nlu.catalog import load_training_data_with_catalogs  # noqa: E402
from nlu.components.fallback import FALLBACK_INTENT  # noqa: E402
from nlu.evaluation import evaluate  # noqa: E402
from nlu.normalization import fold  # noqa: E402


def text_key(text: str) -> str:
    """A message as compared with the training data: folded (so lower case), single spaces."""
    return " ".join(fold(text).split())


def print_report(name: str, report: dict, texts: list[str], trained: set[str], misses: bool) -> None:
    """One figure a line, prefixed with the file's name; misses last when asked for."""
    intent, raw = report["intent"], report["intent_without_fallback"]
    print(f"{name} examples {intent['n_examples']}")
    # Short common messages ("ok", "bye") are in the training data word for word; the accuracy on the
    # rest says how the model does on phrasings it has not been given.
    unseen = [text for text in texts if text_key(text) not in trained]
    unseen_errors = sum(text_key(e["text"]) not in trained for e in report["errors"])
    print(f"{name} examples_not_in_training_data {len(unseen)}")
    if unseen:
        print(f"{name} accuracy_with_fallback_not_in_training_data {1 - unseen_errors / len(unseen):.4f}")
    print(f"{name} accuracy_with_fallback {intent['accuracy']:.4f}")
    print(f"{name} accuracy_without_fallback {raw['accuracy']:.4f}")
    print(f"{name} fallback_rate {report['fallback_rate']:.4f}")
    # The fallback answer is the right one for a message outside the shop's business, so the OOS
    # benchmark counts it as "out of scope"; printed apart so the strict figure stays comparable.
    wrong = [
        e for e in report["errors"]
        if not (e["intent"] == "out_of_scope" and e["predicted"] == FALLBACK_INTENT)
    ]
    print(f"{name} accuracy_fallback_as_out_of_scope {1 - len(wrong) / intent['n_examples']:.4f}")
    print(f"{name} macro_f1_with_fallback {intent['macro_f1']:.4f}")
    for pair in intent["confused"]:
        print(f"{name} confused {pair['intent']} -> {pair['predicted']} {pair['count']}")
    if misses:
        for error in report["errors"]:
            label = f"{error['intent']} -> {error['predicted']} {error['confidence']:.3f}"
            print(f"{name} miss [{label}] {error['text']}")


def main(argv: list[str] | None = None) -> int:
    """Train the shipped model once and score each held-out file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", type=Path, nargs="+", help="Rasa YAML nlu files of held-out messages")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data" / "nlu")
    parser.add_argument("--catalog", type=Path, default=ROOT / "data" / "demo" / "shop.yml")
    parser.add_argument("--misses", action="store_true", help="list every miss (development data only)")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.files if not path.is_file()]
    if missing:
        parser.error(f"no such file: {', '.join(missing)}")
    data = load_training_data_with_catalogs([args.data_dir], [args.catalog])
    trained = {text_key(example.text) for example in data.examples}
    with tempfile.TemporaryDirectory() as scratch:
        model = load_model(train_model(data, Path(scratch) / "model"))
        for path in args.files:
            held_out = load_training_data([path])
            texts = [example.text for example in held_out.examples]
            print_report(path.stem, evaluate(model, held_out), texts, trained, args.misses)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

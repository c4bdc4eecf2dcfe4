"""Benchmark the embedded NLU pipeline on public intent data sets (and optionally a Rasa server).

For each set under the bench directory (``<set>/train.yml``, ``<set>/test.yml``): train, load, evaluate
on the test split (intent accuracy; entity precision/recall/F1 on exact spans and types) and time
single-message parses and batch throughput. One line per set.

    python bench/nlu_bench.py [--sets hwu64,snips] [--bench-dir DIR] [--config FILE] [--rasa URL]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nlu import RasaHTTPInterpreter, load_model, load_training_data, train_model
from nlu.evaluation import evaluate

DEFAULT_BENCH_DIR = Path(__file__).resolve().parents[2] / "shared" / "nlu-bench"


# VmHWM (peak RSS of this address space) rather than ru_maxrss, which keeps the parent's peak across exec.
SERVING_MEMORY_PROBE = """
import sys
from nlu import load_model
interpreter = load_model(sys.argv[1])
for text in sys.argv[2:]:
    interpreter.parse(text)
interpreter.parse_batch(sys.argv[2:])
with open("/proc/self/status") as status:
    print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024)
"""


def serving_megabytes(model_dir: Path, texts: list[str]) -> float:
    """Return the peak RSS (MB) of a fresh process that loads the model and parses ``texts``."""
    import subprocess

    completed = subprocess.run(
        [sys.executable, "-c", SERVING_MEMORY_PROBE, str(model_dir), *texts],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(completed.stdout.strip().splitlines()[-1])


def latency_percentiles(parse, texts: list[str], repeat: int = 1, cpu: bool = False) -> tuple[float, float]:
    """Return (p50, p99) in milliseconds of ``parse`` over ``texts``: wall-clock time, or with
    ``cpu`` this thread's CPU time (what the parse itself costs, without the waits for a core that a
    loaded machine adds to the wall-clock tail)."""
    clock = time.thread_time if cpu else time.perf_counter
    for text in texts[:50]:
        parse(text)
    timings = []
    for _ in range(repeat):
        for text in texts:
            started = clock()
            parse(text)
            timings.append((clock() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[min(len(timings) - 1, int(0.99 * len(timings)))]


def bench_set(name: str, bench_dir: Path, config: Path | None, rasa_url: str | None) -> None:
    """Train, evaluate and time one data set, printing one line (two with --rasa)."""
    train = load_training_data([bench_dir / name / "train.yml"])
    test = load_training_data([bench_dir / name / "test.yml"])
    texts = [example.text for example in test.examples]
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        started = time.perf_counter()
        model_dir = train_model(train, Path(tmp) / "model", config_path=config)
        train_seconds = time.perf_counter() - started
        gc.collect()
        started = time.perf_counter()
        interpreter = load_model(model_dir)
        load_seconds = time.perf_counter() - started
        serving_mb = serving_megabytes(model_dir, texts[:200])
    report = evaluate(interpreter, test)
    raw, shown, entities = report["intent_without_fallback"], report["intent"], report["entities"]
    p50, p99 = latency_percentiles(interpreter.parse, texts, repeat=2)
    cpu_p50, cpu_p99 = latency_percentiles(interpreter.parse, texts, repeat=2, cpu=True)
    started = time.perf_counter()
    interpreter.parse_batch(texts)
    throughput = len(texts) / (time.perf_counter() - started)
    print(
        f"{name:10s} acc {raw['accuracy']:.4f}  macroF1 {raw['macro_f1']:.4f}  "
        f"(with fallback: acc {shown['accuracy']:.4f}, fallback {report['fallback_rate']:.3f})  "
        f"entities P {entities['precision']:.3f} R {entities['recall']:.3f} F1 {entities['f1']:.3f} "
        f"(macro F1 {entities['macro_f1']:.3f})  train {train_seconds:.1f}s  load {load_seconds:.2f}s  "
        f"parse p50 {p50:.3f}ms p99 {p99:.3f}ms  (CPU time p50 {cpu_p50:.3f}ms p99 {cpu_p99:.3f}ms)  "
        f"batch {throughput:,.0f} msg/s  "
        f"serving RSS {serving_mb:.0f}MB",
        flush=True,
    )
    if rasa_url:
        rasa = RasaHTTPInterpreter(rasa_url, timeout=30.0)
        rasa_report = evaluate(rasa, test)
        rasa_p50, rasa_p99 = latency_percentiles(rasa.parse, texts[:300])
        rasa_raw = rasa_report["intent_without_fallback"]
        print(
            f"{name + ' rasa':10s} acc {rasa_raw['accuracy']:.4f}  macroF1 {rasa_raw['macro_f1']:.4f}  "
            f"parse p50 {rasa_p50:.3f}ms p99 {rasa_p99:.3f}ms  | ours/rasa: acc "
            f"{raw['accuracy'] / max(rasa_raw['accuracy'], 1e-9):.3f}  p50 {p50 / max(rasa_p50, 1e-9):.3f}",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH_DIR)
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--config", type=Path, default=None, help="pipeline config.yml (default: built-in)")
    parser.add_argument("--rasa", default=None, metavar="URL", help="also evaluate a running Rasa server")
    args = parser.parse_args(argv)
    if not args.bench_dir.is_dir():
        print(f"bench directory not found: {args.bench_dir}", file=sys.stderr)
        return 2
    available = sorted(p.name for p in args.bench_dir.iterdir() if (p / "train.yml").is_file())
    names = args.sets.split(",") if args.sets else available
    missing = [n for n in names if n not in available]
    if missing:
        print(f"unknown set(s) {', '.join(missing)}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    np.seterr(all="ignore")
    for name in names:
        bench_set(name, args.bench_dir, args.config, args.rasa)
    return 0


if __name__ == "__main__":
    sys.exit(main())

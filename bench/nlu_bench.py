"""Benchmark the embedded NLU pipeline on public intent data sets (and optionally a Rasa server).

For each set under the bench directory (``<set>/train.yml``, ``<set>/test.yml``): train, load, evaluate
on the test split (intent accuracy; entity precision/recall/F1 on exact spans and types) and time
single-message parses and batch throughput. One line per set.

    python bench/nlu_bench.py [--sets hwu64,snips] [--bench-dir DIR] [--config FILE] [--rasa URL]
    python bench/nlu_bench.py --oos [--oos-share 0.25]     # leave intents out, count them as out of scope
    python bench/nlu_bench.py --clinc PATH/data_full.json  # CLINC150 out-of-scope benchmark
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
from nlu.components.fallback import FALLBACK_INTENT
from nlu.evaluation import evaluate
from nlu.training_data import TrainingData, TrainingExample

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


def latency_unpreempted(parse, texts: list[str], repeat: int = 1) -> tuple[float, float, float] | None:
    """Return (share of parses the scheduler preempted, p50, p99 in ms of the others' wall-clock
    time), or None where the thread's involuntary context switches cannot be read (not Linux).

    On a machine loaded by other work a CPU-bound loop of parses is preempted now and then, and a
    preempted parse waits several milliseconds for a core: the wall-clock p99 then measures the
    load. Timing the parses that ran undisturbed, and saying how many did not, separates the two."""
    import resource

    if not hasattr(resource, "RUSAGE_THREAD"):
        return None
    for text in texts[:50]:
        parse(text)
    undisturbed, preempted = [], 0
    for _ in range(repeat):
        for text in texts:
            switches = resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw
            started = time.perf_counter()
            parse(text)
            elapsed = (time.perf_counter() - started) * 1000
            if resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw == switches:
                undisturbed.append(elapsed)
            else:
                preempted += 1
    if not undisturbed:
        return None
    undisturbed.sort()
    share = preempted / (preempted + len(undisturbed))
    p99 = undisturbed[min(len(undisturbed) - 1, int(0.99 * len(undisturbed)))]
    return share, statistics.median(undisturbed), p99


def bench_set(name: str, bench_dir: Path, config: Path | None, rasa_url: str | None) -> None:
    """Train, evaluate and time one data set, printing one line (two with --rasa)."""
    train = load_training_data([bench_dir / name / "train.yml"])
    test = load_training_data([bench_dir / name / "test.yml"])
    texts = [example.text for example in test.examples]
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        started, cpu_started = time.perf_counter(), time.process_time()
        model_dir = train_model(train, Path(tmp) / "model", config_path=config)
        train_seconds = time.perf_counter() - started
        # CPU seconds too: on a loaded machine the wall-clock time follows the load, not the code
        train_cpu_seconds = time.process_time() - cpu_started
        gc.collect()
        started = time.perf_counter()
        interpreter = load_model(model_dir)
        load_seconds = time.perf_counter() - started
        serving_mb = serving_megabytes(model_dir, texts[:200])
    report = evaluate(interpreter, test)
    raw, shown, entities = report["intent_without_fallback"], report["intent"], report["entities"]
    p50, p99 = latency_percentiles(interpreter.parse, texts, repeat=2)
    cpu_p50, cpu_p99 = latency_percentiles(interpreter.parse, texts, repeat=2, cpu=True)
    unpreempted = latency_unpreempted(interpreter.parse, texts, repeat=2)
    started = time.perf_counter()
    interpreter.parse_batch(texts)
    throughput = len(texts) / (time.perf_counter() - started)
    print(
        f"{name:10s} acc {raw['accuracy']:.4f}  macroF1 {raw['macro_f1']:.4f}  "
        f"(with fallback: acc {shown['accuracy']:.4f}, fallback {report['fallback_rate']:.3f})  "
        f"entities P {entities['precision']:.3f} R {entities['recall']:.3f} F1 {entities['f1']:.3f} "
        f"(macro F1 {entities['macro_f1']:.3f})  train {train_seconds:.1f}s (CPU {train_cpu_seconds:.1f}s)  "
        f"load {load_seconds:.2f}s  "
        f"parse p50 {p50:.3f}ms p99 {p99:.3f}ms  (CPU time p50 {cpu_p50:.3f}ms p99 {cpu_p99:.3f}ms)  "
        + (
            f"(not preempted: p50 {unpreempted[1]:.3f}ms p99 {unpreempted[2]:.3f}ms, "
            f"{unpreempted[0]:.1%} of parses preempted)  "
            if unpreempted
            else ""
        )
        + f"batch {throughput:,.0f} msg/s  "
        f"serving RSS {serving_mb:.0f}MB",
        flush=True,
    )
    calibration = report["calibration"]
    fallback = interpreter.metadata.get("training_report", {}).get("fallback", {})
    print(
        f"{name:10s} test ECE ({calibration['bins']} bins) uncalibrated "
        f"{calibration.get('ece_uncalibrated', float('nan')):.4f} -> calibrated {calibration['ece']:.4f}  "
        f"(temperature {calibration.get('temperature')})  fallback threshold {fallback.get('threshold')} "
        f"({fallback.get('threshold_source')}; 97%-precision choice {fallback.get('chosen_threshold')})  "
        f"out-of-scope threshold {fallback.get('out_of_scope_threshold')}",
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


def oos_split(train, test, share: float):
    """Leave every ``round(1/share)``-th intent (sorted by name) out of ``train``; return the reduced
    training data, the test messages, and which of them are out of scope."""
    intents = sorted({example.intent for example in train.examples})
    step = max(2, round(1 / share))
    removed = set(intents[step - 1 :: step])
    train.examples = [example for example in train.examples if example.intent not in removed]
    return train, [e.text for e in test.examples], [e.intent for e in test.examples], removed


def oos_scores(interpreter, texts: list[str], gold: list[str], removed: set[str]) -> tuple[float, float]:
    """Return (out-of-scope recall, in-scope accuracy); a fallback is right only for out-of-scope."""
    predicted = [r.intent.name for r in interpreter.parse_batch(texts)]
    oos = [p == "nlu_fallback" for p, g in zip(predicted, gold) if g in removed]
    in_scope = [p == g for p, g in zip(predicted, gold) if g not in removed]
    return sum(oos) / max(1, len(oos)), sum(in_scope) / max(1, len(in_scope))


def bench_oos(name: str, bench_dir: Path, config: Path | None, share: float) -> None:
    """Out-of-scope protocol: train without some intents, count their test messages as out of scope
    (a fallback is correct), and compare the plain 0.4 confidence fallback with the chosen thresholds
    and the out-of-scope score, on one trained model. One figure a line."""
    train = load_training_data([bench_dir / name / "train.yml"])
    test = load_training_data([bench_dir / name / "test.yml"])
    train, texts, gold, removed = oos_split(train, test, share)
    n_oos = sum(g in removed for g in gold)
    print(f"{name} oos intents removed: {len(removed)}  test oos {n_oos} in-scope {len(gold) - n_oos}")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        model_dir = train_model(train, Path(tmp) / "model", config_path=config)
        print(f"{name} oos train seconds: {time.perf_counter() - started:.1f}")
        interpreter = load_model(model_dir)
    fallback = next(c for c in interpreter.components if c.name == "FallbackClassifier")
    report = interpreter.metadata.get("training_report", {}).get("fallback", {})
    chosen = (fallback.threshold, dict(fallback.intent_thresholds), fallback.out_of_scope_threshold)
    settings = {
        "baseline (threshold 0.4, no out-of-scope score)": (0.4, {}, None),
        "threshold 0.4 + out-of-scope score": (0.4, {}, chosen[2]),
        f"chosen threshold {report.get('chosen_threshold', chosen[0]):.3f} only": (
            report.get("chosen_threshold", chosen[0]), {}, None),
        "model as trained": chosen,
    }
    for label, (threshold, per_intent, oos_threshold) in settings.items():
        fallback.threshold, fallback.intent_thresholds, fallback.out_of_scope_threshold = (
            threshold, per_intent, oos_threshold)
        recall, accuracy = oos_scores(interpreter, texts, gold, removed)
        print(f"{name} {label}: oos recall {recall:.4f}")
        print(f"{name} {label}: in-scope accuracy {accuracy:.4f}")
    # The same model with confidence alone: the recall a plain threshold reaches at the in-scope
    # accuracy of "threshold 0.4 + out-of-scope score" (does the score add anything over confidence?).
    fallback.threshold, fallback.intent_thresholds, fallback.out_of_scope_threshold = 0.0, {}, None
    results = interpreter.parse_batch(texts)
    fallback.threshold, fallback.intent_thresholds, fallback.out_of_scope_threshold = 0.4, {}, chosen[2]
    _, combined_accuracy = oos_scores(interpreter, texts, gold, removed)
    confidence = np.array([r.intent.confidence for r in results])
    right = np.array([r.intent.name == g for r, g in zip(results, gold)])
    is_oos = np.array([g in removed for g in gold])
    for threshold in np.unique(confidence):
        kept = confidence >= threshold
        if (right & kept & ~is_oos).sum() / max(1, (~is_oos).sum()) <= combined_accuracy:
            recall = (~kept & is_oos).sum() / max(1, is_oos.sum())
            print(f"{name} confidence alone at that in-scope accuracy: threshold {threshold:.3f}")
            print(f"{name} confidence alone at that in-scope accuracy: oos recall {recall:.4f}")
            break
    fallback.threshold, fallback.intent_thresholds, fallback.out_of_scope_threshold = chosen


CLINC_OUT_OF_SCOPE = "oos"


def clinc_split(dataset: dict, split: str) -> tuple[list[str], list[str]]:
    """Return (texts, gold intents) of a CLINC150 split and its out-of-scope twin (``oos_<split>``,
    gold intent ``oos``)."""
    rows = [*dataset[split], *dataset[f"oos_{split}"]]
    return [text for text, _ in rows], [intent for _, intent in rows]


def clinc_scores(interpreter, texts: list[str], gold: list[str]) -> tuple[float, float, float]:
    """Return (in-scope accuracy, out-of-scope recall, in-scope fallback rate): a fallback (or an
    ``out_of_scope`` intent) is right only for an out-of-scope message, wrong for an in-scope one."""
    predicted = [r.intent.name for r in interpreter.parse_batch(texts)]
    dropped = [p in (FALLBACK_INTENT, "out_of_scope") for p in predicted]
    in_scope = [(p == g, d) for p, g, d in zip(predicted, gold, dropped) if g != CLINC_OUT_OF_SCOPE]
    oos = [d for g, d in zip(gold, dropped) if g == CLINC_OUT_OF_SCOPE]
    return (
        sum(right for right, _ in in_scope) / max(1, len(in_scope)),
        sum(oos) / max(1, len(oos)),
        sum(d for _, d in in_scope) / max(1, len(in_scope)),
    )


def clinc_val_chosen_threshold(interpreter, dataset: dict, target_accuracy: float) -> None:
    """Choose the out-of-scope threshold from the in-scope ``val`` messages alone (the lowest that
    keeps their accuracy at ``target_accuracy``, the fallback's confidence threshold unchanged) and
    report what it does on ``test``: the trade-off a shop could pick with its own held-out
    messages, without any out-of-scope example."""
    fallback = next(c for c in interpreter.components if c.name == "FallbackClassifier")
    trained = fallback.out_of_scope_threshold
    fallback.out_of_scope_threshold = None
    outcomes = {}
    for split in ("val", "test"):
        texts, gold = clinc_split(dataset, split)
        messages = interpreter.parse_batch(texts)
        scores = np.array([score for score in clinc_out_of_scope_scores(interpreter, texts)])
        kept = np.array([r.intent.name != FALLBACK_INTENT for r in messages])
        right = np.array([r.intent.name == g for r, g in zip(messages, gold)])
        outcomes[split] = (scores, kept, right, np.array(gold) == CLINC_OUT_OF_SCOPE)
    fallback.out_of_scope_threshold = trained
    scores, kept, right, oos = outcomes["val"]
    chosen = None
    for threshold in np.unique(scores[~oos & kept & right]):  # ascending: the first that keeps enough
        if (right & kept & (scores <= threshold))[~oos].mean() >= target_accuracy:
            chosen = float(threshold)
            break
    if chosen is None:
        print(f"clinc val in-scope accuracy never reaches {target_accuracy}")
        return
    scores, kept, right, oos = outcomes["test"]
    answered = kept & (scores <= chosen)
    print(f"clinc out-of-scope threshold chosen on in-scope val for accuracy {target_accuracy}: {chosen:.4f}")
    print(f"clinc test in-scope accuracy at that threshold: {(right & answered)[~oos].mean():.4f}")
    print(f"clinc test oos recall at that threshold: {(~answered)[oos].mean():.4f}")


def clinc_tradeoff(interpreter, dataset: dict, targets=(0.921, 0.915, 0.906)) -> None:
    """Print the trade-off curve on ``test``: the best out-of-scope recall the out-of-scope score
    reaches (the confidence fallback unchanged) while in-scope accuracy stays at each target. The
    threshold is chosen on ``test`` itself, so this describes how well the score ranks, not a
    setting a shop could pick; compare branches with it, not with the goal."""
    fallback = next(c for c in interpreter.components if c.name == "FallbackClassifier")
    trained = fallback.out_of_scope_threshold
    fallback.out_of_scope_threshold = None
    texts, gold = clinc_split(dataset, "test")
    messages = interpreter.parse_batch(texts)
    fallback.out_of_scope_threshold = trained
    scores = np.array(clinc_out_of_scope_scores(interpreter, texts))
    oos = np.array(gold) == CLINC_OUT_OF_SCOPE
    right = np.array([r.intent.name == g for r, g in zip(messages, gold)]) & ~oos
    kept = np.array([r.intent.name != FALLBACK_INTENT for r in messages])
    # Answer the messages the confidence kept, least out-of-scope first: after k answers, the
    # in-scope accuracy is (right answers so far) / (in-scope messages).
    order = np.argsort(np.where(kept, scores, np.inf), kind="stable")
    order = order[kept[order]]
    accuracy = np.cumsum(right[order]) / max(1, (~oos).sum())
    recall = 1 - np.cumsum(oos[order]) / max(1, oos.sum())
    print(f"clinc test in-scope accuracy with the confidence fallback only: {accuracy[-1] if len(order) else 0:.4f}")
    for target in targets:
        reached = np.flatnonzero(accuracy >= target)
        value = f"{recall[reached[0]]:.4f}" if len(reached) else "not reached"
        print(f"clinc test oos recall at in-scope accuracy {target} (threshold chosen on test): {value}")


def clinc_out_of_scope_scores(interpreter, texts: list[str]) -> list[float]:
    """Return each message's out-of-scope score, as the pipeline computes it before the fallback."""
    from nlu.message import Message
    from nlu.normalization import nfc

    messages = [Message(nfc(text)) for text in texts]
    for component in interpreter.components:
        if component.name == "FallbackClassifier":
            break
        component.process_batch(messages)
    return [m.data.get("out_of_scope_score", 0.0) for m in messages]


def bench_clinc(path: Path, config: Path | None, target_accuracy: float = 0.921) -> None:
    """CLINC150 (clinc/oos-eval ``data_full.json``): train on the in-scope ``train`` split only, then
    report in-scope accuracy and out-of-scope recall on ``val``+``oos_val`` and ``test``+``oos_test``,
    training time and single-message parse latency. One figure a line."""
    import json

    dataset = json.loads(path.read_text(encoding="utf-8"))
    train = TrainingData(examples=[TrainingExample(text, intent) for text, intent in dataset["train"]])
    with tempfile.TemporaryDirectory() as tmp:
        gc.collect()
        started = time.perf_counter()
        model_dir = train_model(train, Path(tmp) / "model", config_path=config)
        print(f"clinc train seconds: {time.perf_counter() - started:.1f}", flush=True)
        interpreter = load_model(model_dir)
    fallback = interpreter.metadata.get("training_report", {}).get("fallback", {})
    print(f"clinc fallback threshold: {fallback.get('threshold')}")
    print(f"clinc out-of-scope threshold: {fallback.get('out_of_scope_threshold')}")
    for split in ("val", "test"):
        texts, gold = clinc_split(dataset, split)
        accuracy, recall, dropped = clinc_scores(interpreter, texts, gold)
        print(f"clinc {split} in-scope accuracy: {accuracy:.4f}")
        print(f"clinc {split} oos recall: {recall:.4f}")
        print(f"clinc {split} in-scope fallback rate: {dropped:.4f}", flush=True)
    clinc_val_chosen_threshold(interpreter, dataset, target_accuracy)
    clinc_tradeoff(interpreter, dataset)
    texts, _ = clinc_split(dataset, "test")
    p50, p99 = latency_percentiles(interpreter.parse, texts[::5])
    print(f"clinc parse p50 ms: {p50:.3f}")
    print(f"clinc parse p99 ms: {p99:.3f}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH_DIR)
    parser.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    parser.add_argument("--config", type=Path, default=None, help="pipeline config.yml (default: built-in)")
    parser.add_argument("--rasa", default=None, metavar="URL", help="also evaluate a running Rasa server")
    parser.add_argument("--oos", action="store_true", help="run the out-of-scope protocol instead")
    parser.add_argument("--oos-share", type=float, default=0.25, help="share of intents left out (--oos)")
    parser.add_argument(
        "--clinc", type=Path, default=None, metavar="PATH",
        help="run the CLINC150 out-of-scope benchmark on this data_full.json instead",
    )
    parser.add_argument(
        "--clinc-target", type=float, default=0.921,
        help="in-scope val accuracy the val-chosen out-of-scope threshold keeps (--clinc)",
    )
    args = parser.parse_args(argv)
    np.seterr(all="ignore")
    if args.clinc is not None:
        if not args.clinc.is_file():
            print(f"CLINC150 data not found: {args.clinc}", file=sys.stderr)
            return 2
        bench_clinc(args.clinc, args.config, args.clinc_target)
        return 0
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
        if args.oos:
            bench_oos(name, args.bench_dir, args.config, args.oos_share)
        else:
            bench_set(name, args.bench_dir, args.config, args.rasa)
    return 0


if __name__ == "__main__":
    sys.exit(main())

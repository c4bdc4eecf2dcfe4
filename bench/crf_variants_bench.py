"""Entity F1 of CRF configuration variants on one trained intent model, for feature experiments.

The intent pipeline is trained once per set and split (and kept under ``--cache``), so every
variant is tagged with the same predicted intents and only the CRF differs. ``--split dev`` trains
on 90% of the set's train.yml (per intent, a fixed shuffle) and scores the held-back 10%, the place
to compare ideas; ``--split test`` trains on all of train.yml and scores test.yml, once per idea.
crfsuite's shuffling seed alone moves HWU64 entity F1 by about +-0.012, so compare variants over
several ``--seeds``. One figure a line. ``--gold-intent`` tags every message with its gold
intent's CRF instead of the predicted one (what a wrong intent costs); ``--errors`` also prints, per
entity type, the recall lost to each kind of miss (see ``error_kinds``).

    python bench/crf_variants_bench.py --set hwu64 --split dev --seeds 1,2,3 '{}' '{"wide_pairs": true}'
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path

from nlu import load_model, load_training_data, train_model
from nlu.components import crf
from nlu.evaluation import entity_report
from nlu.message import Message
from nlu.normalization import nfc
from nlu.training_data import TrainingData

DEFAULT_BENCH_DIR = Path(__file__).resolve().parents[2] / "shared" / "nlu-bench"


def dev_split(data: TrainingData, share: float = 0.1, seed: int = 7) -> tuple[TrainingData, TrainingData]:
    """Hold back ``share`` of each intent's examples (at least one): (train part, dev part)."""
    rng = random.Random(seed)
    by_intent: dict[str, list[int]] = {}
    for index, example in enumerate(data.examples):
        by_intent.setdefault(example.intent, []).append(index)
    held: set[int] = set()
    for _, indices in sorted(by_intent.items()):
        rng.shuffle(indices)
        held.update(indices[: max(1, round(len(indices) * share))])
    train, dev = copy.copy(data), copy.copy(data)
    train.examples = [e for i, e in enumerate(data.examples) if i not in held]
    dev.examples = [e for i, e in enumerate(data.examples) if i in held]
    return train, dev


Spans = set[tuple[str, int, int]]


def error_kinds(gold: Spans, predicted: Spans) -> list[tuple[str, str]]:
    """Classify each gold entity ``predicted`` misses: ``type`` (the same span with another type),
    ``boundary`` (an overlapping span of its type), ``both`` (an overlapping span of another type)
    or ``missed`` (nothing overlaps); and each prediction overlapping no gold entity as
    ``spurious``. Returns (entity type, kind) pairs."""
    kinds = []
    for entity, start, end in sorted(gold - predicted):
        overlapping = [p for p in predicted if p[1] < end and start < p[2]]
        if any((p[1], p[2]) == (start, end) for p in overlapping):
            kinds.append((entity, "type"))
        elif any(p[0] == entity for p in overlapping):
            kinds.append((entity, "boundary"))
        else:
            kinds.append((entity, "both" if overlapping else "missed"))
    for entity, start, end in sorted(predicted - gold):
        if not any(g[1] < end and start < g[2] for g in gold):
            kinds.append((entity, "spurious"))
    return kinds


def print_errors(label: str, gold: list[Spans], predicted: list[Spans], wrong_intent: list[bool]) -> None:
    """Print, per entity type (most gold entities first), its support, recall, precision and the
    counts of each kind of miss, and how many misses fell in messages whose intent was wrong."""
    report = entity_report(gold, predicted)
    counts: dict[tuple[str, str], int] = {}
    in_wrong: dict[str, int] = {}
    for g, p, wrong in zip(gold, predicted, wrong_intent):
        for entity, kind in error_kinds(g, p):
            counts[entity, kind] = counts.get((entity, kind), 0) + 1
            if wrong and kind != "spurious":
                in_wrong[entity] = in_wrong.get(entity, 0) + 1
    kinds = ("missed", "boundary", "type", "both", "spurious")
    print(f"{label} errors: type support recall precision {' '.join(kinds)} misses-with-wrong-intent")
    totals = dict.fromkeys(kinds, 0)
    for entity, row in sorted(report["per_entity"].items(), key=lambda p: -p[1]["support"]):
        line = [counts.get((entity, kind), 0) for kind in kinds]
        for kind, n in zip(kinds, line):
            totals[kind] += n
        print(f"{label} errors: {entity} {row['support']} {row['recall']:.3f} {row['precision']:.3f} "
              f"{' '.join(map(str, line))} {in_wrong.get(entity, 0)}")
    print(f"{label} errors: all {report['support']} {report['recall']:.3f} {report['precision']:.3f} "
          f"{' '.join(str(totals[k]) for k in kinds)} {sum(in_wrong.values())}")


def main(argv: list[str] | None = None) -> int:
    """Train each variant's CRF and print its entity F1, precision, recall and training CPU time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variants", nargs="*", default=["{}"], help="CRF config overrides as JSON objects")
    parser.add_argument("--set", required=True, help="a set under --bench-dir (hwu64, snips, ...)")
    parser.add_argument("--split", choices=("dev", "test"), default="dev")
    parser.add_argument("--seeds", default="1", help="comma-separated crfsuite shuffling seeds")
    parser.add_argument("--bench-dir", type=Path, default=DEFAULT_BENCH_DIR)
    parser.add_argument("--cache", type=Path, default=Path("var/crf-variants"), help="trained intent models")
    parser.add_argument("--dev-seed", type=int, default=7, help="the shuffle choosing the dev split")
    parser.add_argument("--gold-intent", action="store_true", help="tag with the gold intent's CRF")
    parser.add_argument("--errors", action="store_true", help="print the misses by entity type and kind")
    args = parser.parse_args(argv)
    try:
        variants = [json.loads(v) for v in args.variants]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError as exc:
        print(f"bad variant or seeds: {exc}", file=sys.stderr)
        return 2
    if not (args.bench_dir / args.set / "train.yml").is_file():
        print(f"no {args.set}/train.yml under {args.bench_dir}", file=sys.stderr)
        return 2
    data = load_training_data([args.bench_dir / args.set / "train.yml"])
    if args.split == "dev":
        train, scored = dev_split(data, seed=args.dev_seed)
    else:
        train, scored = data, load_training_data([args.bench_dir / args.set / "test.yml"])
    suffix = "" if args.dev_seed == 7 or args.split == "test" else str(args.dev_seed)
    model_dir = args.cache / f"{args.set}-{args.split}{suffix}"
    if not (model_dir / "metadata.json").exists():
        train_model(train, model_dir)
    interpreter = load_model(model_dir)
    position = next(i for i, c in enumerate(interpreter.components) if c.name == "CRFEntityExtractor")
    messages = [Message(nfc(example.text)) for example in scored.examples]
    for component in interpreter.components[:position]:
        component.process_batch(messages)
    gold = [{(a.entity, a.start, a.end) for a in example.entities} for example in scored.examples]
    wrong_intent = [
        (m.data.get("intent") or {}).get("name") != example.intent
        for m, example in zip(messages, scored.examples)
    ]
    if args.gold_intent:
        for message, example in zip(messages, scored.examples):
            message.data["intent"] = {**(message.data.get("intent") or {}), "name": example.intent}
    base_config = interpreter.components[position].config
    label = f"{args.set} {args.split}{' gold-intent' if args.gold_intent else ''}"
    for variant in variants:
        scores = []
        for seed in seeds:
            crf.CRF_SEED = seed
            extractor = crf.CRFEntityExtractor({**base_config, **variant})
            started = time.process_time()
            extractor.train([], train)
            cpu = time.process_time() - started
            parsed = [Message(m.text, {**m.data, "entities": [dict(e) for e in m.data.get("entities", [])]})
                      for m in messages]
            for message in parsed:
                extractor.process(message)
            predicted = [{(e["entity"], e["start"], e["end"]) for e in m.data["entities"]} for m in parsed]
            report = entity_report(gold, predicted)
            scores.append(report["f1"])
            if args.errors:
                print_errors(f"{label} seed {seed} {json.dumps(variant)}", gold, predicted, wrong_intent)
            name = f"{label} seed {seed} {json.dumps(variant)}"
            print(f"{name} entity F1: {report['f1']:.4f}", flush=True)
            print(f"{name} entity precision: {report['precision']:.4f}", flush=True)
            print(f"{name} entity recall: {report['recall']:.4f}", flush=True)
            print(f"{name} CRF training CPU seconds: {cpu:.1f}", flush=True)
        if len(seeds) > 1:
            print(f"{label} mean of seeds {args.seeds} {json.dumps(variant)} entity F1: "
                  f"{statistics.mean(scores):.4f}", flush=True)
    crf.CRF_SEED = 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

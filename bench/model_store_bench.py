"""Benchmark the NLU models kept in the database: storing a version, loading it cold (read the
artefact, check its checksum, unpack into an empty cache) and warm (already unpacked on this host),
against loading the same directory straight from disk. One line per database.

    python bench/model_store_bench.py [--runs 7] [--postgres URL]

``--postgres`` (or CAREDESK_TEST_POSTGRES_URL): a server whose role may create a scratch database;
without it only SQLite is measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._harness import scratch_postgres  # noqa: E402
from helpdesk.channels.ledger import make_database_engine  # noqa: E402
from helpdesk.core.db import migrate  # noqa: E402
from helpdesk.nlu_admin.models import NluModel  # noqa: E402
from helpdesk.nlu_admin.store import DatabaseModelStore  # noqa: E402
from nlu import load_model, load_training_data, train_model  # noqa: E402


def median_ms(runs: int, prepare: Callable[[int], None], action: Callable[[int], object]) -> float:
    """The median time of ``action`` over ``runs`` runs, each after an untimed ``prepare``."""
    times = []
    for run in range(runs):
        prepare(run)
        started = time.perf_counter()
        action(run)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(name: str, url: str, model_dir: Path, workdir: Path, runs: int) -> None:
    engine = make_database_engine(url)
    migrate(engine)
    store = DatabaseModelStore(engine, workdir / f"{name}-cache-0")
    version = store.add(model_dir, activate=True)
    caches = [workdir / f"{name}-cold-{run}" for run in range(runs)]
    cold = median_ms(runs, lambda run: None, lambda run: DatabaseModelStore(engine, caches[run]).load(version))
    warm = median_ms(runs, lambda run: None, lambda run: DatabaseModelStore(engine, caches[0]).load(version))
    poll = median_ms(runs * 20, lambda run: None, lambda run: store.active_version())
    adds = [workdir / f"{name}-add-{run}" for run in range(runs)]

    def copy_with_new_version(run: int) -> None:
        shutil.copytree(model_dir, adds[run])
        metadata = adds[run] / "metadata.json"
        metadata.write_text(metadata.read_text(encoding="utf-8").replace(version, f"{version}-{run}"),
                            encoding="utf-8")

    add = median_ms(runs, copy_with_new_version, lambda run: store.add(adds[run]))
    with engine.connect() as connection:
        packed = connection.execute(select(NluModel.size).where(NluModel.version == version)).scalar_one()
    engine.dispose()
    print(f"{name:10s} packed {packed / 1e6:.2f} MB | store {add:6.0f} ms | load cold {cold:6.0f} ms | "
          f"load warm {warm:6.0f} ms | active-version poll {poll:5.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", default=os.environ.get("CAREDESK_TEST_POSTGRES_URL", ""))
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="caredesk-model-store-bench-"))
    try:
        model_dir = train_model(load_training_data([ROOT / "data" / "nlu"]), workdir / "model")
        size = sum(path.stat().st_size for path in model_dir.rglob("*") if path.is_file())
        disk = median_ms(args.runs, lambda run: None, lambda run: load_model(model_dir))
        print(f"model directory {size / 1e6:.2f} MB; load_model from disk {disk:.0f} ms (median of {args.runs})")
        measure("sqlite", f"sqlite:///{workdir}/bench.db", model_dir, workdir, args.runs)
        if args.postgres:
            with scratch_postgres(args.postgres) as url:
                measure("postgresql", url, model_dir, workdir, args.runs)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

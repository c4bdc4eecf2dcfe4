"""A segment's preview (count and the 20-customer sample) over the retention bench's shop: 100,000
buyers and 1,000,000 orders on PostgreSQL, a tenth of the buyers helpdesk customers who verified their
phone (``retention_bench.populate``, in a scratch database of its own, created and dropped here).

Two-condition segments, each previewed ``--runs`` times: the issue's example (bought the rice cooker
11–12 months ago, no complaint open), and loyal customers on a channel (at least 3 purchases, has
Telegram). p50 and p95 seconds are printed, and the p95's ratio to a baseline measured in the same
process: a plain ``SELECT count(*), sum(total_vnd) FROM orders`` (one pass over the orders). Then the
p95 of refusing a product nobody sold (looked for on every order's lines first). Prints one figure a
line.

    .venv/bin/python bench/segments_bench.py [--customers 100000] [--orders 1000000] [--runs 10]

Measured 2026-12-05 (2 shared cores, other work running), p95 of 10 runs, baseline 0.11–0.21 s: the
rice-cooker segment 0.19 s (4,457 customers), three purchases on Telegram 0.54 s (9,500). With the
date window sent as parameters, the rice-cooker preview took 0.2 s for its first runs and 55 s once
psycopg had prepared the statement and PostgreSQL planned it for any dates; the dates and products are
now written into the statement (``conditions._inline``). Refusing an unknown product: 2.5 s (which is
why the page previews a typed product name when the field is left, not at each letter).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from _harness import percentile, scratch_postgres  # noqa: E402
from retention_bench import populate, timed  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import Session  # noqa: E402

from helpdesk.channels.ledger import make_database_engine  # noqa: E402
from helpdesk.core.db import migrate  # noqa: E402
from helpdesk.segments.conditions import InvalidSegment  # noqa: E402
from helpdesk.segments.schemas import DEFINITION  # noqa: E402
from helpdesk.segments.service import preview  # noqa: E402
from helpdesk.shop.models import Product  # noqa: E402

SEGMENTS = {
    "rice_cooker_11_12m_no_complaint": [
        {"kind": "bought", "product": "RC-18", "from_days_ago": 330, "to_days_ago": 365},
        {"kind": "open_complaint", "not": True}],
    "three_purchases_on_telegram": [{"kind": "order_count", "min": 3}, {"kind": "channel", "channel": "telegram"}],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    url = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if not url:
        sys.exit("set CAREDESK_TEST_POSTGRES_URL (source var/test-services.env)")
    with scratch_postgres(url, "caredesk_segments") as scratch:
        engine = make_database_engine(scratch)
        migrate(engine)
        started = time.perf_counter()
        populate(engine, args.customers, args.orders)
        with Session(engine) as session:
            session.add(Product(sku="RC-18", name="Nồi cơm điện Bếp Việt 1.8L"))
            session.commit()
        print(f"setup_s {time.perf_counter() - started:.1f}")
        now = datetime.now(UTC)
        with Session(engine) as session:
            baseline = percentile(timed(lambda: session.execute(
                text("SELECT count(*), sum(total_vnd) FROM orders")).one(), args.runs), 0.95)
            print(f"baseline_orders_scan_p95_s {baseline:.3f}")
            for name, definition in SEGMENTS.items():
                conditions = DEFINITION.validate_python(definition)
                print(f"{name}_count {preview(session, conditions, now).count}")
                # each preview at its own moment, as each request reads the clock anew
                times = timed(lambda: preview(session, conditions, datetime.now(UTC)), args.runs)
                p95 = percentile(times, 0.95)
                print(f"{name}_p50_s {percentile(times, 0.5):.3f}")
                print(f"{name}_p95_s {p95:.3f}")
                print(f"{name}_p95_vs_baseline {p95 / baseline:.1f}")
            # a product name being typed: refused only after looking for it on every order's lines
            typo = DEFINITION.validate_python([{"kind": "bought", "product": "RC-1"}])

            def refused() -> None:
                try:
                    preview(session, typo, datetime.now(UTC))
                except InvalidSegment:
                    session.rollback()

            times = timed(refused, args.runs)
            print(f"unknown_product_refusal_p95_s {percentile(times, 0.95):.3f}")
        engine.dispose()


if __name__ == "__main__":
    main()

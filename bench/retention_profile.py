"""Where the reports page's time goes, per statement: every request the page makes for a period (the
summary, the filter choices, the NPS report, the retention report, and the retention report's parts on
their own), timed statement by statement (SQLAlchemy cursor events), the slowest first, with
``EXPLAIN (ANALYZE, BUFFERS)`` of each one over ``--explain-over`` seconds.

It reads a database filled by ``bench/retention_bench.py --keep-db NAME`` (100,000 customers, 1,000,000
orders), so the figures are those of the bench's data and the same database can be profiled again after
a change without loading it anew:

    .venv/bin/python bench/retention_bench.py --keep-db caredesk_retention_keep --runs 1
    .venv/bin/python bench/retention_profile.py caredesk_retention_keep [--explain-over 0.02]

Profiled 2026-12-05 16:40 UTC (load average 4 on 2 shared cores), each part the fastest of 3 runs,
before this change (customer_purchases as migration 0022 left it):

- 12 months: summary 0.13 s (conversation KPIs 0.06, CSAT by complaint 0.05, volume 0.03, reasons 0.02,
  NPS 0.01), its repeat rate 0.01 s; NPS report 0.06 s; filter choices 0.001 s; retention 0.65 s:
  segments 0.34 s (NPS by phone: all 60,000 answers joined to their orders through a parallel scan of
  the million orders, 0.45 s of a 0.64 s plan under EXPLAIN), cohorts 0.27–0.32 s (a parallel scan of
  the million orders hash-joined to the 7,692 new customers, then 76,920 rows sorted on two 13-branch
  CASE month numbers and counted distinct), totals 0.03 s, churn 0.03 s (of it 10 ms JIT compilation).
- 30 days: summary 0.03 s, NPS 0.01 s, retention 0.03 s (no new customer that recent in this data).

After (same data, 17:12-17:19 UTC, load average 4.6-5.9): 12 months: retention 0.12-0.14 s in four
statements (segments 0.05: CSAT and support for the new customers' phones, NPS summed up in their
rows; the one pass for totals, repeat windows and cohort months 0.03-0.04; churn 0.02 + 0.01), NPS
0.05 s in three statements, summary 0.19-0.26 s (unchanged: the conversation counts 0.06 and CSAT by
complaint 0.04-0.05, both the customer-contact and complaint sub-queries per conversation). 30 days:
retention 0.05 s, NPS 0.03 s, summary 0.08-0.13 s. Statements that take 0.1 ms in EXPLAIN cost 5-15 ms
each on this machine when loaded (planning and the round trip), so fewer statements count too.

Tried and not taken: reading the new customers' orders by index (a nested loop over
ix_orders_phone_created, index only) still takes 0.17 s for the 76,920 orders, and an orders (phone, id)
or (id, phone) index for the NPS join 0.18–0.5 s: both still walk every order or answer of the customers.
The summary's counts and volume chart in one pass instead of two: no gain the bench could see.
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

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlmodel import Session  # noqa: E402

from helpdesk.channels.ledger import make_database_engine  # noqa: E402
from helpdesk.reports import nps, retention, service  # noqa: E402
from helpdesk.reports.period import parse_period  # noqa: E402
from helpdesk.sla.service import load_config  # noqa: E402

TZ = "Asia/Ho_Chi_Minh"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", help="a database retention_bench.py --keep-db filled")
    parser.add_argument("--explain-over", type=float, default=0.02,
                        help="EXPLAIN (ANALYZE, BUFFERS) statements slower than this (seconds); 0: none")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("CAREDESK_TEST_POSTGRES_URL")
    if not url:
        sys.exit("set CAREDESK_TEST_POSTGRES_URL (source var/test-services.env)")
    kept = make_url(url).set(database=args.database).render_as_string(hide_password=False)
    engine = make_database_engine(kept)
    log: list[tuple[float, str, object]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def started(connection, _cursor, _statement, _parameters, _context, _many) -> None:
        connection.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def finished(connection, _cursor, statement, parameters, _context, _many) -> None:
        log.append((time.perf_counter() - connection.info["bench_started"], statement, parameters))

    now = datetime.now(UTC)
    with Session(engine) as session:
        config = load_config(session, parse_period(None, None, TZ, now).tz)
        for label, start in (("12m", now.date().replace(year=now.year - 1).isoformat()), ("30d", None)):
            period = parse_period(start, None, TZ, now)
            query = service.ReportQuery(period=period, now=now)
            parts = {
                "summary": lambda: service.summarize(session, query, config),
                "summary_repeat_rate": lambda: retention.repeat_rate_90d(session, period, now),
                "options": lambda: service.filter_choices(session, None),
                "nps": lambda: nps.nps_report(session, period, None),
                "retention": lambda: retention.retention_report(session, period, now, 180),
                "retention_churn": lambda: retention._churn(session, min(period.end, now), 180),
                "retention_cohorts": lambda: retention._cohorts(session, period, now),
            }
            for name, work in parts.items():
                work()  # warm the caches and the statement cache
                best: list[tuple[float, str, object]] = []
                best_time = float("inf")
                for _ in range(args.runs):
                    log.clear()
                    began = time.perf_counter()
                    work()
                    took = time.perf_counter() - began
                    if took < best_time:
                        best_time, best = took, list(log)
                print(f"== {label} {name}: {best_time:.3f} s (fastest of {args.runs}), "
                      f"{len(best)} statements, "
                      f"{sum(t for t, _, _ in best):.3f} s in them")
                for took, statement, parameters in sorted(best, key=lambda entry: -entry[0]):
                    print(f"   {took:.3f}  {' '.join(statement.split())[:150]}")
                    if args.explain_over and took > args.explain_over:
                        with engine.connect() as connection:
                            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement,
                                                              parameters).scalars().all()
                        print("      " + "\n      ".join(plan))
    engine.dispose()


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fill a his-pacs-ws database with synthetic call records and measure the message-record
search by application number: the query plan (EXPLAIN ANALYZE) and the time of
`his-pacs-ws messages search --application-no` end to end.

    python scripts/bench_message_search.py --database-url postgresql://... --records 1000000

Use a scratch database: the records it adds are real rows. Needs psycopg (installed with
his-pacs-ws) and the his-pacs-ws command.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import psycopg

FILL = """
INSERT INTO call_records (at, service, caller, operation, message_id, application_no, patient_id,
                          outcome, fault_code, duration_ms, replayed, remote_addr, request_body, response_body)
SELECT now() - (g * interval '3 seconds'),
       CASE WHEN g %% 3 = 0 THEN 'PACS' ELSE 'HIS' END,
       CASE WHEN g %% 3 = 0 THEN 'pacs-bench' ELSE 'his-bench' END,
       (ARRAY['SubmitApplication','ConfirmPayment','ReportStatus','GetApplication','PushReport'])[g %% 5 + 1],
       'BM' || g, 'BA' || (g / 6), 'BP' || (g / 20),
       CASE WHEN g %% 50 = 0 THEN 'FAULT' ELSE 'OK' END,
       CASE WHEN g %% 50 = 0 THEN 'InvalidTransition' END,
       12.5, false, '127.0.0.1',
       convert_to(repeat('<x>request ' || g || '</x>', 60), 'UTF8'),
       convert_to(repeat('<y>response ' || g || '</y>', 40), 'UTF8')
FROM generate_series(%(start)s, %(stop)s) AS g
"""

SEARCH = ("SELECT id, at, service, caller, operation, message_id, application_no, patient_id, outcome, "
          "fault_code, duration_ms, replayed, remote_addr FROM call_records WHERE application_no = %s "
          "ORDER BY at DESC, id DESC LIMIT 100")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=100_000)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://")

    with psycopg.connect(url, autocommit=True) as conn:
        have = conn.execute("SELECT count(*) FROM call_records WHERE caller LIKE '%%-bench'").fetchone()[0]
        started = time.perf_counter()
        for start in range(have, args.records, args.batch):
            conn.execute(FILL, {"start": start + 1, "stop": min(start + args.batch, args.records)})
        if args.records > have:
            print(f"inserted {args.records - have} records in {time.perf_counter() - started:.0f} s")
        conn.execute("ANALYZE call_records")
        total = conn.execute("SELECT count(*) FROM call_records").fetchone()[0]
        size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('call_records'))").fetchone()[0]
        print(f"call_records: {total} rows, {size} with indexes and bodies")
        target = f"BA{args.records // 12}"
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + SEARCH, (target,)).fetchall()
        print(f"\nEXPLAIN ANALYZE of the search for application {target}:")
        print("\n".join("  " + row[0] for row in plan))
        timings = []
        for _ in range(20):
            t = time.perf_counter()
            conn.execute(SEARCH, (target,)).fetchall()
            timings.append((time.perf_counter() - t) * 1000)
        timings.sort()
        print(f"\nthe query, 20 runs: median {timings[10]:.2f} ms, max {timings[-1]:.2f} ms")

    env = {**os.environ, "HIS_PACS_LOG_LEVEL": "WARNING"}
    t = time.perf_counter()
    result = subprocess.run(["his-pacs-ws", "messages", "search", "--application-no", target,
                             "--database-url", args.database_url], capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - t
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    print(f"`his-pacs-ws messages search --application-no {target}`: {elapsed:.2f} s end to end "
          f"(process start included), {result.stdout.strip().splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Fill a his-pacs-ws database with synthetic released applications (an item and a charge
line each), change a few of them, and measure what a view-mode partner's "everything since
N" poll costs: the query plans (EXPLAIN ANALYZE) and timings, as the partner's login role.

    python scripts/bench_exchange_poll.py --database-url postgresql://... --applications 200000

Use a scratch database: the rows it adds are real. It grants (and afterwards revokes) a view
partner with the his-pacs-ws command, and connects as it. Needs psycopg.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

SETUP = """
INSERT INTO patients (patient_id, name, sex) VALUES ('BENCH-P', '测试', 'U') ON CONFLICT DO NOTHING;
INSERT INTO visits (visit_no, patient_pk, patient_type)
    SELECT 'BENCH-V', id, 'INPATIENT' FROM patients WHERE patient_id = 'BENCH-P' ON CONFLICT DO NOTHING;
"""

FILL = """
WITH p AS (SELECT id FROM patients WHERE patient_id = 'BENCH-P'),
     v AS (SELECT id FROM visits WHERE visit_no = 'BENCH-V'),
     a AS (
        INSERT INTO applications (application_no, request_hash, status, patient_pk, visit_pk, patient_id,
            patient_name, patient_type, patient_snapshot, visit_snapshot, ordering_doctor_code,
            ordering_doctor_name, ordering_department_code, executing_department_code, ordered_at,
            total_amount, charge_point, released_at)
        SELECT 'BENCH-A' || g, 'x', 'RELEASED', p.id, v.id, 'BENCH-P', '测试', 'INPATIENT',
            '{"patient_id": "BENCH-P", "name": "测试", "sex": "U"}',
            '{"visit_no": "BENCH-V", "patient_type": "INPATIENT"}', 'D1', '医生', 'NK',
            (ARRAY['CT', 'MR', 'US', 'DR'])[g %% 4 + 1], now() - g * interval '1 minute', 150.00,
            'NURSE_SEND', now() - g * interval '1 minute'
        FROM generate_series(%(start)s, %(stop)s) AS g, p, v
        RETURNING id),
     i AS (
        INSERT INTO application_items (application_pk, position, item_code, item_name, quantity, unit_price,
                                       modality)
        SELECT id, 0, 'CT001', '头颅CT平扫', 1, 150.00, 'CT' FROM a)
INSERT INTO charge_lines (application_pk, item_code, item_name, quantity, unit_price, amount, trigger,
                          charged_at)
SELECT id, 'CT001', '头颅CT平扫', 1, 150.00, 150.00, 'NURSE_SEND', now() FROM a
"""

POLLS = {
    "worklist since N": "SELECT * FROM exchange.worklist WHERE change_no > %s ORDER BY change_no LIMIT 500",
    "application_status since N": ("SELECT * FROM exchange.application_status WHERE change_no > %s "
                                   "ORDER BY change_no LIMIT 500"),
    "charges since N": "SELECT * FROM exchange.charges WHERE change_no > %s ORDER BY change_no LIMIT 500",
    "worklist, one department, first page": ("SELECT * FROM exchange.worklist WHERE change_no > 0 "
                                             "ORDER BY change_no LIMIT 500"),
}


def cli(args: list[str], url: str, stdin: str | None = None) -> None:
    result = subprocess.run(["his-pacs-ws", *args, "--database-url", url], input=stdin, capture_output=True,
                            text=True, env={"HIS_PACS_LOG_LEVEL": "WARNING", "PATH": sys.exec_prefix + "/bin:"
                                            "/usr/local/bin:/usr/bin:/bin"})
    if result.returncode != 0:
        raise SystemExit(result.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--applications", type=int, default=200_000)
    parser.add_argument("--changed", type=int, default=100, help="applications changed after the fill")
    parser.add_argument("--batch", type=int, default=50_000)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://")

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SETUP)
        have = conn.execute("SELECT count(*) FROM applications WHERE application_no LIKE 'BENCH-A%%'").fetchone()[0]
        started = time.perf_counter()
        for start in range(have, args.applications, args.batch):
            conn.execute(FILL, {"start": start + 1, "stop": min(start + args.batch, args.applications)})
        if args.applications > have:
            print(f"inserted {args.applications - have} applications in {time.perf_counter() - started:.0f} s")
        since = conn.execute("SELECT max(change_no) FROM applications").fetchone()[0]
        conn.execute("UPDATE applications SET status = 'REGISTERED', updated_at = now() WHERE id IN "
                     "(SELECT id FROM applications WHERE application_no LIKE 'BENCH-A%%' AND status = 'RELEASED' "
                     "ORDER BY id DESC LIMIT %s)", (args.changed,))
        conn.execute("ANALYZE applications; ANALYZE application_items; ANALYZE charge_lines; ANALYZE refund_lines")
        total = conn.execute("SELECT count(*) FROM applications").fetchone()[0]
        print(f"applications: {total} rows; {args.changed} changed after change_no {since}")

    name = f"bench_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    cli(["views", "grant", name, "--role", "PACS", "--departments", "CT", "--password-stdin"], args.database_url,
        stdin=password + "\n")
    try:
        partner = make_conninfo(**{**conninfo_to_dict(url), "user": name, "password": password})
        with psycopg.connect(partner, autocommit=True) as conn:
            for label, sql in POLLS.items():
                params = (since,) if "%s" in sql else ()
                plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
                rows = len(conn.execute(sql, params).fetchall())
                timings = []
                for _ in range(10):
                    t = time.perf_counter()
                    conn.execute(sql, params).fetchall()
                    timings.append((time.perf_counter() - t) * 1000)
                timings.sort()
                print(f"\n{label} (as the partner, CT only): {rows} rows, median {timings[5]:.1f} ms, "
                      f"max {timings[-1]:.1f} ms over 10 runs")
                print("\n".join("  " + row[0] for row in plan))
    finally:
        cli(["views", "revoke", name], args.database_url)
    return 0


if __name__ == "__main__":
    sys.exit(main())

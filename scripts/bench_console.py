#!/usr/bin/env python3
"""Fill a his-pacs-ws database with a busy day (synthetic call records, delivered
notifications) and time what a scrape and the console's pages cost on it.

    his-pacs-ws serve --database-url postgresql://...                         # a scratch database
    echo 'bench-password-1' | his-pacs-ws operators add bench --role admin --password-stdin ...
    python scripts/bench_console.py --url http://127.0.0.1:8000 --database-url postgresql://... \\
        --operator bench --password bench-password-1 --calls 1000000 --deliveries 1000000

Use a scratch database: the rows it adds are real. The delivered notifications go to a
partner system named bench-receiver (added here, with a callback to a closed port, paused).
Needs psycopg and requests (installed with his-pacs-ws) and the his-pacs-ws command.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

import psycopg
import requests

CALLS = """
INSERT INTO call_records (at, service, caller, operation, message_id, application_no, patient_id, outcome,
                          fault_code, duration_ms, replayed, remote_addr, direction)
SELECT now() - (g * interval '1 day' / %(total)s), CASE WHEN g %% 3 = 0 THEN 'PACS' ELSE 'HIS' END,
       CASE WHEN g %% 3 = 0 THEN 'pacs-bench' ELSE 'his-bench' END,
       (ARRAY['SubmitApplication','ConfirmPayment','ReportStatus','GetApplication','PushReport'])[g %% 5 + 1],
       'CB' || g, 'CA' || (g / 6), 'CP' || (g / 20), CASE WHEN g %% 50 = 0 THEN 'FAULT' ELSE 'OK' END,
       CASE WHEN g %% 50 = 0 THEN 'InvalidTransition' END, 12.5, false, '127.0.0.1', 'in'
FROM generate_series(%(start)s, %(stop)s) AS g
"""
EVENTS = """
INSERT INTO outbox_events (kind, target_role, application_no, patient_id, department_code, origin, payload,
                           occurred_at, fanned_out)
SELECT 'ApplicationStatusChanged', 'PACS', 'CA' || g, 'CP' || g, 'CT', 'his-bench', '{}'::jsonb, now(), true
FROM generate_series(%(start)s, %(stop)s) AS g
RETURNING id
"""
DELIVERIES = """
INSERT INTO deliveries (event_pk, system_pk, application_no, status, priority, attempts, next_attempt_at,
                        expires_at, delivered_at, last_outcome, created_at, updated_at)
SELECT e.id, %(system)s, e.application_no, 'DELIVERED', 1, 1, now(), now(), now(), 'DELIVERED', now(), now()
FROM outbox_events e WHERE e.id BETWEEN %(low)s AND %(high)s
"""


def timed(session: requests.Session, url: str, rounds: int) -> tuple[float, float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        answer = session.get(url, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    return statistics.median(times), max(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--operator", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--calls", type=int, default=1_000_000, help="call records over the last day")
    parser.add_argument("--deliveries", type=int, default=1_000_000, help="delivered notifications")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    base = args.url.rstrip("/")

    with psycopg.connect(url, autocommit=True) as conn:
        if conn.execute("SELECT count(*) FROM systems WHERE name = 'bench-receiver'").fetchone()[0] == 0:
            for command in (["systems", "add", "bench-receiver", "--role", "PACS", "--password-stdin"],
                            ["systems", "set-callback", "bench-receiver", "--url", "http://127.0.0.1:9/"],
                            ["deliveries", "pause", "bench-receiver"]):
                subprocess.run(["his-pacs-ws", *command, "--database-url", args.database_url], check=True,
                               input="bench-receiver-password\n", text=True, capture_output=True)
        system = conn.execute("SELECT id FROM systems WHERE name = 'bench-receiver'").fetchone()[0]
        have = conn.execute("SELECT count(*) FROM call_records WHERE caller LIKE '%%-bench'").fetchone()[0]
        started = time.perf_counter()
        for start in range(have, args.calls, 100_000):
            conn.execute(CALLS, {"start": start + 1, "stop": min(start + 100_000, args.calls), "total": args.calls})
        delivered = conn.execute("SELECT count(*) FROM deliveries WHERE system_pk = %s", (system,)).fetchone()[0]
        for start in range(delivered, args.deliveries, 100_000):
            ids = [r[0] for r in conn.execute(EVENTS, {"start": start + 1,
                                                        "stop": min(start + 100_000, args.deliveries)})]
            conn.execute(DELIVERIES, {"system": system, "low": min(ids), "high": max(ids)})
        print(f"filled in {time.perf_counter() - started:.0f} s")
        conn.execute("ANALYZE")
        calls, deliveries = (conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                             for table in ("call_records", "deliveries"))
    print(f"call_records {calls}, deliveries {deliveries}")

    session = requests.Session()
    form = session.get(base + "/console/login", timeout=30).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    signed = session.post(base + "/console/login", data={"csrf": csrf, "name": args.operator,
                                                         "password": args.password, "next": "/console/"},
                          timeout=30)
    signed.raise_for_status()
    print(f"{'GET':<40}{'median ms':>10}{'max ms':>10}")
    for path in ("/metrics", "/console/critical", "/console/messages", "/console/messages?system=his-bench",
                 "/console/deliveries", "/console/systems", "/console/charts", "/console/messages?application_no=CA4242"):
        median, worst = timed(session, base + path, args.rounds)
        print(f"{path:<40}{median:>10.1f}{worst:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

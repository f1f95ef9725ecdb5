#!/usr/bin/env python3
"""A raw-HTTP load generator for a running his-pacs-ws: several client processes, each
holding keep-alive connections, every change with its own MessageId and business keys, and
a JSON result file with throughput, per-operation latency and the CPU per call of the
service, its deliverers and PostgreSQL.

Two scenarios:
  submit  SubmitApplication alone, back to back on every connection;
  day     a hospital day: each journey is one application: HIS submits it; an outpatient
          pays (60%) or the ward nurse sends an inpatient's order (40%); PACS polls its
          worklist, registers, examines and pushes the final report; HIS reads the
          patient's reports; one journey in ten raises a critical value, which HIS
          acknowledges and handles (the loop closed).

    python scripts/loadgen.py --url http://127.0.0.1:8000 --scenario submit \\
        --processes 4 --connections 8 --seconds 20 --out loadgen-submit.json

Credentials from HIS_PACS_HIS_USER/_PASSWORD and HIS_PACS_PACS_USER/_PASSWORD (PasswordText
tokens), or --no-auth. Traffic goes to the --url given (127.0.0.1 by default), stops after
--seconds or --max-calls, whichever comes first. Requests are prebuilt strings formatted
per call: the client spends little CPU, so on a shared machine most of it is the server's.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import resource
import statistics
import sys
import threading
import time
import uuid
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import ENV, HEADER, cpu_seconds, is_postgres, is_service, processes  # noqa: E402


STAFF = "<v:Code>{c}</v:Code><v:Name>{n}</v:Name>"
SUBMIT = ("<v:SubmitApplication><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
          "<v:Patient><v:PatientId>{p}</v:PatientId><v:Name>小明</v:Name><v:Sex>M</v:Sex></v:Patient>"
          "<v:Visit><v:VisitNo>{a}V</v:VisitNo><v:PatientType>{ptype}</v:PatientType>{ward}</v:Visit>"
          "<v:OrderingDoctor><v:Code>D1</v:Code><v:Name>王医生</v:Name></v:OrderingDoctor>"
          "<v:OrderingDepartmentCode>NK</v:OrderingDepartmentCode>"
          "<v:ExecutingDepartmentCode>{dept}</v:ExecutingDepartmentCode>"
          "<v:OrderedAt>2026-11-26T09:00:00+08:00</v:OrderedAt><v:Items><v:ApplicationItem>"
          "<v:ItemCode>CT001</v:ItemCode><v:ItemName>头颅CT平扫</v:ItemName><v:Quantity>1</v:Quantity>"
          "<v:UnitPrice>150.00</v:UnitPrice><v:Modality>CT</v:Modality></v:ApplicationItem></v:Items>"
          "<v:ClinicalDiagnosis>头痛待查</v:ClinicalDiagnosis></v:request></v:SubmitApplication>")
INPATIENT_WARD = "<v:InpatientNo>{a}Z</v:InpatientNo><v:WardCode>W3</v:WardCode><v:BedNo>12</v:BedNo>"
PAY = ("<v:ConfirmPayment><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
       "<v:Amount>150.00</v:Amount><v:PaidAt>2026-11-26T09:05:00+08:00</v:PaidAt></v:request></v:ConfirmPayment>")
SEND = ("<v:SendInpatientOrder><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
        "<v:Nurse><v:Code>N1</v:Code><v:Name>李护士</v:Name></v:Nurse>"
        "<v:SentAt>2026-11-26T09:05:00+08:00</v:SentAt></v:request></v:SendInpatientOrder>")
WORKLIST = ("<v:QueryApplications><v:request><v:ExecutingDepartmentCode>{dept}</v:ExecutingDepartmentCode>"
            "<v:PageSize>20</v:PageSize></v:request></v:QueryApplications>")
STATUS = ("<v:ReportStatus><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
          "<v:Status>{status}</v:Status><v:OccurredAt>{at}</v:OccurredAt>"
          "<v:Operator><v:Code>R1</v:Code><v:Name>登记员</v:Name></v:Operator>{extra}</v:request></v:ReportStatus>")
REPORT = ("<v:PushReport><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
          "<v:ReportNo>{a}R</v:ReportNo><v:ResultStatus>FINAL</v:ResultStatus>"
          "<v:ReportingDoctor><v:Code>R7</v:Code><v:Name>张医生</v:Name></v:ReportingDoctor>"
          "<v:ReportedAt>2026-11-26T10:00:00+08:00</v:ReportedAt><v:AccessionNo>{a}X</v:AccessionNo>"
          "<v:Findings>脑实质未见明显异常密度影。</v:Findings><v:Impression>颅脑CT平扫未见异常。</v:Impression>"
          "<v:Positive>false</v:Positive><v:VerifyingDoctor><v:Code>R9</v:Code><v:Name>赵主任</v:Name>"
          "</v:VerifyingDoctor><v:VerifiedAt>2026-11-26T10:10:00+08:00</v:VerifiedAt></v:request></v:PushReport>")
READ_REPORTS = ("<v:QueryReports><v:request><v:PatientId>{p}</v:PatientId></v:request></v:QueryReports>")
RAISE = ("<v:RaiseCriticalValue><v:request><v:MessageId>{m}</v:MessageId><v:CriticalValueNo>{a}C</v:CriticalValueNo>"
         "<v:ApplicationNo>{a}</v:ApplicationNo><v:Finding>急性硬膜下血肿</v:Finding>"
         "<v:ReportedBy><v:Code>R7</v:Code><v:Name>张医生</v:Name></v:ReportedBy>"
         "<v:ReportedAt>2026-11-26T09:40:00+08:00</v:ReportedAt>"
         "<v:ReviewedBy><v:Code>R9</v:Code><v:Name>赵主任</v:Name></v:ReviewedBy></v:request></v:RaiseCriticalValue>")
ACK = ("<v:AcknowledgeCriticalValue><v:request><v:MessageId>{m}</v:MessageId><v:CriticalValueNo>{a}C</v:CriticalValueNo>"
       "<v:ReceivedBy><v:Code>N2</v:Code><v:Name>护士站</v:Name></v:ReceivedBy>"
       "<v:ReceivedAt>2026-11-26T09:43:00+08:00</v:ReceivedAt><v:ReadBackConfirmed>true</v:ReadBackConfirmed>"
       "</v:request></v:AcknowledgeCriticalValue>")
HANDLE = ("<v:RecordCriticalValueHandling><v:request><v:MessageId>{m}</v:MessageId>"
          "<v:CriticalValueNo>{a}C</v:CriticalValueNo><v:HandledBy><v:Code>D1</v:Code><v:Name>王医生</v:Name>"
          "</v:HandledBy><v:HandledAt>2026-11-26T09:50:00+08:00</v:HandledAt>"
          "<v:HandlingOpinion>急诊开颅</v:HandlingOpinion></v:request></v:RecordCriticalValueHandling>")


def submit_journey(rng: random.Random, dept: str) -> list[tuple[str, str, str, dict]]:
    return [("his", "SubmitApplication", SUBMIT, {"ptype": "OUTPATIENT", "ward": "", "dept": dept})]


def day_journey(rng: random.Random, dept: str) -> list[tuple[str, str, str, dict]]:
    inpatient = rng.random() < 0.4
    steps = [("his", "SubmitApplication", SUBMIT, {
        "ptype": "INPATIENT" if inpatient else "OUTPATIENT", "ward": INPATIENT_WARD if inpatient else "",
        "dept": dept})]
    steps.append(("his", "SendInpatientOrder", SEND, {}) if inpatient else ("his", "ConfirmPayment", PAY, {}))
    steps += [
        ("pacs", "QueryApplications", WORKLIST, {"dept": dept}),
        ("pacs", "ReportStatus", STATUS, {"status": "REGISTERED", "at": "2026-11-26T09:20:00+08:00",
                                          "extra": "<v:AccessionNo>{a}X</v:AccessionNo><v:Room>CT1</v:Room>"}),
        ("pacs", "ReportStatus", STATUS, {"status": "EXAMINED", "at": "2026-11-26T09:30:00+08:00", "extra": ""}),
    ]
    if rng.random() < 0.1:
        steps += [("pacs", "RaiseCriticalValue", RAISE, {}), ("his", "AcknowledgeCriticalValue", ACK, {}),
                  ("his", "RecordCriticalValueHandling", HANDLE, {})]
    steps += [("pacs", "PushReport", REPORT, {}), ("his", "QueryReports", READ_REPORTS, {})]
    return steps


SCENARIOS = {"submit": submit_journey, "day": day_journey}


def client(worker: int, args: argparse.Namespace, headers: dict, deadline: float, quota: int, out) -> None:
    """One client process: ``args.connections // args.processes`` keep-alive connections."""
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    journey = SCENARIOS[args.scenario]
    results: list[tuple[str, float, int, bool]] = []
    lock = threading.Lock()
    remaining = [quota]

    def connection(index: int) -> None:
        rng = random.Random(f"{args.run}-{worker}-{index}")
        conn = http.client.HTTPConnection(host, port, timeout=30)
        local = []
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    break
            application_no = "L" + uuid.uuid4().hex[:18]
            patient_id = "P" + uuid.uuid4().hex[:12]
            for service, operation, template, values in journey(rng, args.dept):
                text = template.format(m=uuid.uuid4().hex, a=application_no, p=patient_id, **values)
                if "{a}" in text:  # a value that itself names the application
                    text = text.replace("{a}", application_no)
                body = ENV.format(header=headers[service], body=text).encode()
                started = time.perf_counter()
                try:
                    conn.request("POST", f"/ws/{service}", body, {"Content-Type": "text/xml; charset=utf-8"})
                    response = conn.getresponse()
                    payload = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=30)
                    status, payload = 0, b""
                seconds = time.perf_counter() - started
                local.append((operation, seconds, status, status == 200 and b"Fault>" not in payload))
            with lock:
                remaining[0] -= 1
        conn.close()
        with lock:
            results.extend(local)

    per_process = max(1, args.connections // args.processes)
    threads = [threading.Thread(target=connection, args=(i,)) for i in range(per_process)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(results)


def percentile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, int(round(q * len(values))) - 1))]


def is_deliverer(cmdline: str) -> bool:
    return "his_pacs_ws.cli" in cmdline and (" deliver" in cmdline or " inbox" in cmdline)


def _tree(table: dict, root: int) -> set[int]:
    members, grew = {root} if root in table else set(), True
    while grew:
        grew = False
        for pid, (ppid, _, _) in table.items():
            if ppid in members and pid not in members:
                members.add(pid)
                grew = True
    return members


class CpuMeter:
    """CPU seconds of the service (web workers), its deliverers and inbox processor, and
    PostgreSQL. With --service-pid and --pgdata, of those process trees only (other work
    on the machine is not counted); without, of every process whose name matches."""

    def __init__(self, service_pid: int | None, pgdata: str | None):
        self.service_pid = service_pid
        self.postmaster = None
        if pgdata:
            with open(os.path.join(pgdata, "postmaster.pid")) as f:
                self.postmaster = int(f.readline())

    def read(self) -> dict[str, float]:
        if self.service_pid is None or self.postmaster is None:
            return {"service": cpu_seconds(is_service), "deliverers": cpu_seconds(is_deliverer),
                    "postgres": cpu_seconds(is_postgres)}
        table = processes()
        totals = {"service": 0.0, "deliverers": 0.0, "postgres": 0.0}
        for pid in _tree(table, self.service_pid):
            totals["deliverers" if is_deliverer(table[pid][1]) else "service"] += table[pid][2]
        for pid in _tree(table, self.postmaster):
            totals["postgres"] += table[pid][2]
        return totals


def _children_cpu() -> float:
    """CPU seconds (user and system) of the client processes this process has joined."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="submit")
    parser.add_argument("--processes", type=int, default=4, help="client processes")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections in all")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long to load (after warm-up)")
    parser.add_argument("--max-journeys", type=int, default=20000, help="stop after this many journeys")
    parser.add_argument("--dept", default=None, help="executing department (default: one per run)")
    parser.add_argument("--out", default=None, help="JSON result file")
    parser.add_argument("--service-pid", type=int, help="pid of `his-pacs-ws serve`: count its process tree's CPU")
    parser.add_argument("--pgdata", help="the PostgreSQL data directory: count its server's CPU")
    parser.add_argument("--label", default="", help="a note stored in the result file")
    parser.add_argument("--his-user", default=os.environ.get("HIS_PACS_HIS_USER"))
    parser.add_argument("--his-password", default=os.environ.get("HIS_PACS_HIS_PASSWORD"))
    parser.add_argument("--pacs-user", default=os.environ.get("HIS_PACS_PACS_USER"))
    parser.add_argument("--pacs-password", default=os.environ.get("HIS_PACS_PACS_PASSWORD"))
    parser.add_argument("--no-auth", action="store_true", help="for a demo server with HIS_PACS_AUTH=off")
    args = parser.parse_args()
    if not args.url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
        print("load goes to this machine only (--url http://127.0.0.1:...)", file=sys.stderr)
        return 2
    args.run = uuid.uuid4().hex[:8]
    args.dept = args.dept or "L" + args.run[:6].upper()
    if args.no_auth:
        headers = {"his": "", "pacs": ""}
    elif not all((args.his_user, args.his_password, args.pacs_user, args.pacs_password)):
        print("credentials needed: HIS_PACS_HIS_USER/_PASSWORD and HIS_PACS_PACS_USER/_PASSWORD, or --no-auth",
              file=sys.stderr)
        return 2
    else:
        headers = {"his": HEADER.format(user=args.his_user, password=args.his_password),
                   "pacs": HEADER.format(user=args.pacs_user, password=args.pacs_password)}

    context = multiprocessing.get_context("fork")

    def run(seconds: float, journeys: int) -> tuple[list, float]:
        queue = context.Queue()
        deadline = time.monotonic() + seconds
        share = max(1, journeys // args.processes)
        workers = [context.Process(target=client, args=(i, args, headers, deadline, share, queue))
                   for i in range(args.processes)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        results = [row for _ in workers for row in queue.get(timeout=seconds + 120)]
        elapsed = time.perf_counter() - started
        for worker in workers:
            worker.join(timeout=10)
        return results, elapsed

    run(2.0, args.processes * 4)  # warm-up: connections, the workers' caches
    meter = CpuMeter(args.service_pid, args.pgdata)
    before = meter.read()
    clients_before = _children_cpu()
    results, elapsed = run(args.seconds, args.max_journeys)
    cpu = {name: value - before[name] for name, value in meter.read().items()}
    cpu["load generator"] = _children_cpu() - clients_before  # on the same cores, on a shared machine

    calls = len(results)
    failed = [r for r in results if not r[3]]
    by_op: dict[str, list[float]] = {}
    for operation, seconds, _, _ in results:
        by_op.setdefault(operation, []).append(seconds)
    every = sorted(r[1] for r in results)
    summary = {
        "scenario": args.scenario, "label": args.label, "url": args.url, "processes": args.processes,
        "connections": args.connections, "seconds": round(elapsed, 2), "calls": calls,
        "failed": len(failed), "calls_per_second": round(calls / elapsed, 1),
        "p50_ms": round(statistics.median(every) * 1000, 1) if every else None,
        "p99_ms": round(percentile(every, 0.99) * 1000, 1) if every else None,
        "cpu_ms_per_call": {name: round(value * 1000 / calls, 2) if calls else None for name, value in cpu.items()},
        "operations": {
            op: {"calls": len(v), "share": round(len(v) / calls, 3),
                 "p50_ms": round(statistics.median(sorted(v)) * 1000, 1),
                 "p99_ms": round(percentile(sorted(v), 0.99) * 1000, 1)}
            for op, v in sorted(by_op.items(), key=lambda kv: -len(kv[1]))
        },
        "cpu_counted": "process trees" if args.service_pid and args.pgdata else "by process name",
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
    }
    if failed:
        summary["failures_sample"] = [(op, status) for op, _, status, _ in failed[:5]]
    print(f"{args.scenario}: {calls} calls in {elapsed:.1f} s over {args.connections} connections: "
          f"{summary['calls_per_second']} calls/s, p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms, "
          f"{len(failed)} failed")
    print("CPU ms per call: " + ", ".join(f"{k} {v}" for k, v in summary["cpu_ms_per_call"].items()))
    print(f"{'operation':<30}{'calls':>7}{'p50 ms':>9}{'p99 ms':>9}")
    for op, row in summary["operations"].items():
        print(f"{op:<30}{row['calls']:>7}{row['p50_ms']:>9}{row['p99_ms']:>9}")
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2, ensure_ascii=False)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

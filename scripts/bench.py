#!/usr/bin/env python3
"""Load a running his-pacs-ws with the outpatient workflow and report throughput, latency
and the CPU the service and PostgreSQL spent per call.

Each round is one application: SubmitApplication, ConfirmPayment, ReportStatus REGISTERED,
GetApplication (4 calls). Requests are prebuilt raw envelopes so the client spends little
CPU on the same machine. CPU is read from /proc for the processes whose command line
names his-pacs-ws serve (the gunicorn master and its workers), for the background processes
serve starts (the deliverers of push mode, the PACS inbox processor; each shown apart) and
for postgres (every backend, the background processes' included).

    python scripts/bench.py --url http://127.0.0.1:8000 --rounds 500 --concurrency 4
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
import uuid
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ENV = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
       'xmlns:v="urn:his-pacs-ws:v1">{header}<s:Body>{body}</s:Body></s:Envelope>')
# A PasswordText UsernameToken: the cheapest token for the service to check, so the numbers
# measure the work of the calls (a digest token adds a nonce insert per call).
HEADER = ('<s:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-'
          'wssecurity-secext-1.0.xsd"><wsse:UsernameToken><wsse:Username>{user}</wsse:Username>'
          '<wsse:Password>{password}</wsse:Password></wsse:UsernameToken></wsse:Security></s:Header>')

SUBMIT = ("<v:SubmitApplication><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
          "<v:Patient><v:PatientId>{p}</v:PatientId><v:Name>小明</v:Name><v:Sex>M</v:Sex></v:Patient>"
          "<v:Visit><v:VisitNo>{a}V</v:VisitNo><v:PatientType>OUTPATIENT</v:PatientType></v:Visit>"
          "<v:OrderingDoctor><v:Code>D1</v:Code><v:Name>王医生</v:Name></v:OrderingDoctor>"
          "<v:OrderingDepartmentCode>NK</v:OrderingDepartmentCode>"
          "<v:ExecutingDepartmentCode>CT</v:ExecutingDepartmentCode>"
          "<v:OrderedAt>2026-11-26T09:00:00+08:00</v:OrderedAt><v:Items><v:ApplicationItem>"
          "<v:ItemCode>CT001</v:ItemCode><v:ItemName>头颅CT平扫</v:ItemName><v:Quantity>1</v:Quantity>"
          "<v:UnitPrice>150.00</v:UnitPrice><v:Modality>CT</v:Modality></v:ApplicationItem></v:Items>"
          "</v:request></v:SubmitApplication>")
PAY = ("<v:ConfirmPayment><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
       "<v:Amount>150.00</v:Amount><v:PaidAt>2026-11-26T09:05:00+08:00</v:PaidAt></v:request></v:ConfirmPayment>")
REGISTER = ("<v:ReportStatus><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
            "<v:Status>REGISTERED</v:Status><v:OccurredAt>2026-11-26T09:20:00+08:00</v:OccurredAt>"
            "<v:Operator><v:Code>R1</v:Code><v:Name>登记员</v:Name></v:Operator>"
            "<v:AccessionNo>{a}X</v:AccessionNo></v:request></v:ReportStatus>")
GET = "<v:GetApplication><v:request><v:ApplicationNo>{a}</v:ApplicationNo></v:request></v:GetApplication>"

STEPS = [("his", "SubmitApplication", SUBMIT), ("his", "ConfirmPayment", PAY),
         ("pacs", "ReportStatus", REGISTER), ("his", "GetApplication", GET)]


def processes() -> dict[int, tuple[int, str, float]]:
    """pid -> (parent pid, command line, utime + stime in seconds) of every process."""
    tick = os.sysconf("SC_CLK_TCK")
    table = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        table[int(pid)] = (int(fields[1]), cmdline, (int(fields[11]) + int(fields[12])) / tick)
    return table


def under(table: dict, pid: int, root: int | None) -> bool:
    """Whether ``pid`` is ``root`` or descends from it (always, without a root)."""
    if root is None:
        return True
    for _ in range(64):
        if pid == root:
            return True
        if pid <= 1 or pid not in table:
            return False
        pid = table[pid][0]
    return False


def cpu_seconds(match, root: int | None = None) -> float:
    """utime + stime of every process whose command line matches (and, given ``root``, that
    is it or descends from it: another deployment on the machine is not counted)."""
    table = processes()
    return sum(cpu for pid, (_, cmdline, cpu) in table.items() if match(cmdline) and under(table, pid, root))


def is_service(cmdline: str) -> bool:
    return ("his-pacs-ws" in cmdline or "his_pacs_ws.cli" in cmdline) and " serve" in cmdline


def is_background(command: str):
    """A his-pacs-ws background process: `deliver` or `inbox` (serve's children or on their own)."""
    def match(cmdline: str) -> bool:
        return ("his-pacs-ws" in cmdline or "his_pacs_ws.cli" in cmdline) and f" {command}" in cmdline \
            and " serve" not in cmdline
    return match


BACKGROUND = {"deliverers": is_background("deliver"), "inbox processor": is_background("inbox")}


def is_postgres(cmdline: str) -> bool:
    return cmdline.startswith("postgres") or "/postgres " in cmdline


def post(url: str, body: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        err.read()
        status = err.code
    return status, time.perf_counter() - started


def refused(url: str, header: str) -> str | None:
    """Why a Ping with these credentials fails, or None."""
    request = urllib.request.Request(url, data=ENV.format(header=header, body="<v:Ping/>").encode(),
                                     headers={"Content-Type": "text/xml; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            return None
    except urllib.error.HTTPError as err:
        body = err.read()
        for code in (b"AuthenticationFailed", b"AccessDenied"):
            if code in body:
                return code.decode()
        return f"HTTP {err.code}"
    except OSError as err:
        return f"cannot reach the deployment ({err})"


def round_trip(base: str, headers: dict, latencies: dict, failures: list, lock: threading.Lock) -> None:
    application_no = "B" + uuid.uuid4().hex[:16]
    patient_id = "P" + uuid.uuid4().hex[:12]
    for service, operation, template in STEPS:
        body = ENV.format(header=headers[service],
                          body=template.format(m=uuid.uuid4().hex, a=application_no, p=patient_id)).encode()
        status, seconds = post(f"{base}/ws/{service}", body)
        with lock:
            latencies[operation].append(seconds)
            if status != 200:
                failures.append((operation, status))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rounds", type=int, default=300, help="applications to walk (4 calls each)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--his-user", default=os.environ.get("HIS_PACS_HIS_USER"))
    parser.add_argument("--his-password", default=os.environ.get("HIS_PACS_HIS_PASSWORD"))
    parser.add_argument("--pacs-user", default=os.environ.get("HIS_PACS_PACS_USER"))
    parser.add_argument("--pacs-password", default=os.environ.get("HIS_PACS_PACS_PASSWORD"))
    parser.add_argument("--no-auth", action="store_true", help="for a demo server with HIS_PACS_AUTH=off")
    parser.add_argument("--serve-pid", type=int, help="count only this serve process and its children")
    parser.add_argument("--postgres-pid", type=int,
                        help="count only this postmaster and its backends (the first line of postmaster.pid)")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    if args.no_auth:
        headers = {"his": "", "pacs": ""}
    elif not all((args.his_user, args.his_password, args.pacs_user, args.pacs_password)):
        print("credentials needed: HIS_PACS_HIS_USER/_PASSWORD and HIS_PACS_PACS_USER/_PASSWORD "
              "(or --his-user ... --pacs-password), or --no-auth", file=sys.stderr)
        return 2
    else:
        headers = {"his": HEADER.format(user=args.his_user, password=args.his_password),
                   "pacs": HEADER.format(user=args.pacs_user, password=args.pacs_password)}

    for service in ("his", "pacs"):  # wrong credentials are said once, before any load
        problem = refused(f"{base}/ws/{service}", headers[service])
        if problem:
            print(f"{service.upper()} credentials: {problem}. Check the name and password against the server's "
                  "`his-pacs-ws systems list` (the server's log says why)", file=sys.stderr)
            return 2

    latencies = {operation: [] for _, operation, _ in STEPS}
    failures: list = []
    lock = threading.Lock()
    for _ in range(5):  # warm-up: connections, caches
        round_trip(base, headers, {k: [] for k in latencies}, [], lock)

    def measure() -> tuple[float, float, dict[str, float]]:
        return (cpu_seconds(is_service, args.serve_pid), cpu_seconds(is_postgres, args.postgres_pid),
                {name: cpu_seconds(match, args.serve_pid) for name, match in BACKGROUND.items()})

    service_cpu, postgres_cpu, background_cpu = measure()
    started = time.perf_counter()
    with ThreadPoolExecutor(args.concurrency) as pool:
        for future in [pool.submit(round_trip, base, headers, latencies, failures, lock) for _ in range(args.rounds)]:
            future.result()
    elapsed = time.perf_counter() - started
    service_after, postgres_after, background_after = measure()
    service_cpu, postgres_cpu = service_after - service_cpu, postgres_after - postgres_cpu
    background_cpu = {name: background_after[name] - background_cpu[name] for name in BACKGROUND}

    calls = args.rounds * len(STEPS)
    print(f"{calls} calls ({args.rounds} applications) in {elapsed:.1f} s with {args.concurrency} clients: "
          f"{calls / elapsed:.0f} calls/s")
    print(f"{'operation':<20}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for operation, values in latencies.items():
        values.sort()
        print(f"{operation:<20}{statistics.median(values) * 1000:>10.1f}"
              f"{values[int(len(values) * 0.95) - 1] * 1000:>10.1f}"
              f"{values[int(len(values) * 0.99) - 1] * 1000:>10.1f}{values[-1] * 1000:>10.1f}")
    if service_cpu:
        print(f"service CPU: {service_cpu * 1000 / calls:.2f} ms per call; "
              f"PostgreSQL CPU: {postgres_cpu * 1000 / calls:.2f} ms per call")
        print("background CPU: " + "; ".join(f"{name} {seconds * 1000 / calls:.2f} ms per call"
                                             for name, seconds in background_cpu.items()))
    else:
        print("service CPU: not measured (no his-pacs-ws serve process on this machine)")
    if failures:
        print(f"{len(failures)} calls failed, e.g. {failures[:3]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

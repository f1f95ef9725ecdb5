#!/usr/bin/env python3
"""Push mode's numbers on a running his-pacs-ws: how soon a committed change reaches the
partner, and how many notifications per second the deliverers sustain.

It hosts a receiver that answers at once (raw HTTP, no SOAP stack, so it is not the
bottleneck), points a PACS system's callback at it with the `his-pacs-ws` command, and:
  1. latency: sends --rounds SubmitApplication + ConfirmPayment pairs at --rate per second
     and times each ApplicationReleased from the moment the payment's answer arrived (the
     change is committed by then) to the moment the receiver has it: p50, p90, p99, max;
  2. throughput: pauses the receiver's deliveries, queues --backlog notifications, resumes,
     and times the drain at the receiver.

    python scripts/bench_push.py --url http://127.0.0.1:8000 --cli ".venv/bin/his-pacs-ws" \\
        --rounds 300 --rate 20 --backlog 2000
(HIS credentials from HIS_PACS_HIS_USER / HIS_PACS_HIS_PASSWORD; the PACS system named by
--receiver-system is created if missing, bound to the bench's own department.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench import ENV, HEADER, PAY  # noqa: E402

SUBMIT = ("<v:SubmitApplication><v:request><v:MessageId>{m}</v:MessageId><v:ApplicationNo>{a}</v:ApplicationNo>"
          "<v:Patient><v:PatientId>{p}</v:PatientId><v:Name>小明</v:Name><v:Sex>M</v:Sex></v:Patient>"
          "<v:Visit><v:VisitNo>{a}V</v:VisitNo><v:PatientType>OUTPATIENT</v:PatientType></v:Visit>"
          "<v:OrderingDoctor><v:Code>D1</v:Code><v:Name>王医生</v:Name></v:OrderingDoctor>"
          "<v:OrderingDepartmentCode>NK</v:OrderingDepartmentCode>"
          "<v:ExecutingDepartmentCode>{dept}</v:ExecutingDepartmentCode>"
          "<v:OrderedAt>2026-11-26T09:00:00+08:00</v:OrderedAt><v:Items><v:ApplicationItem>"
          "<v:ItemCode>CT001</v:ItemCode><v:ItemName>头颅CT平扫</v:ItemName><v:Quantity>1</v:Quantity>"
          "<v:UnitPrice>150.00</v:UnitPrice><v:Modality>CT</v:Modality></v:ApplicationItem></v:Items>"
          "</v:request></v:SubmitApplication>")
ANSWER = ('<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
          'xmlns:v="urn:his-pacs-ws:v1"><s:Body><v:{op}Response><v:{op}Result><v:Accepted>true</v:Accepted>'
          '</v:{op}Result></v:{op}Response></s:Body></s:Envelope>')
_OP = re.compile(rb"<(?:\w+:)?Body[^>]*>\s*<(?:\w+:)?(\w+)")
_APP = re.compile(rb"<(?:\w+:)?ApplicationNo>([^<]+)<")


class Arrivals:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.first: dict[str, float] = {}
        self.count = 0


def receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            at = time.monotonic()
            op = _OP.search(body).group(1).decode()
            number = _APP.search(body)
            with arrivals.lock:
                arrivals.count += 1
                if number:
                    arrivals.first.setdefault(number.group(1).decode(), at)
            answer = ANSWER.format(op=op).encode()
            # one write: headers and body apart would wait on the client's delayed ACK
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(answer), answer))

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Caller:
    """Raw SOAP over one keep-alive connection per thread."""

    def __init__(self, url: str, user: str, password: str):
        self.parts = urlsplit(url)
        self.header = HEADER.format(user=user, password=password)
        self.local = threading.local()

    def call(self, op: str, body: str) -> None:
        conn = getattr(self.local, "conn", None) or http.client.HTTPConnection(self.parts.hostname, self.parts.port)
        self.local.conn = conn
        data = ENV.format(header=self.header, body=body).encode()
        conn.request("POST", "/ws/his", data, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": op})
        response = conn.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(f"{op}: HTTP {response.status}: {answer[:300]!r}")

    def released(self, dept: str) -> str:
        number = "B" + uuid.uuid4().hex[:20]
        self.call("SubmitApplication", SUBMIT.format(m=uuid.uuid4().hex, a=number, p="P" + number, dept=dept))
        self.call("ConfirmPayment", PAY.format(m=uuid.uuid4().hex, a=number))
        return number


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--cli", default="his-pacs-ws", help="how to run the his-pacs-ws command on this machine")
    p.add_argument("--receiver-system", default="bench-pacs")
    p.add_argument("--rounds", type=int, default=300)
    p.add_argument("--rate", type=float, default=20.0, help="payments per second during the latency run")
    p.add_argument("--backlog", type=int, default=2000)
    p.add_argument("--concurrency", type=int, default=4)
    p.add_argument("--json", help="write the results to this file")
    args = p.parse_args()
    user, password = os.environ.get("HIS_PACS_HIS_USER"), os.environ.get("HIS_PACS_HIS_PASSWORD")
    if not user or not password:
        print("set HIS_PACS_HIS_USER and HIS_PACS_HIS_PASSWORD (a HIS system's credentials)", file=sys.stderr)
        return 2
    cli = shlex.split(args.cli)

    def run(*command: str, stdin: str | None = None, check: bool = True) -> None:
        subprocess.run([*cli, *command], input=stdin, text=True, capture_output=True, check=check)

    dept = "BENCH"  # the receiver system is bound to it: it hears of the bench's applications only
    arrivals = Arrivals()
    server = receiver(arrivals)
    run("systems", "add", args.receiver_system, "--role", "PACS", "--departments", dept, "--password-stdin",
        stdin="bench-receiver-password\n", check=False)  # exists already: fine
    run("systems", "set-callback", args.receiver_system, "--url", f"http://127.0.0.1:{server.server_port}/")
    caller = Caller(args.url, user, password)
    results: dict = {"rounds": args.rounds, "rate": args.rate, "backlog": args.backlog}
    try:
        # 1. latency under a steady load
        answered: dict[str, float] = {}
        interval = 1.0 / args.rate

        def one(i: int) -> None:
            time.sleep(max(0.0, start + i * interval - time.monotonic()))
            number = caller.released(dept)
            answered[number] = time.monotonic()

        start = time.monotonic()
        with ThreadPoolExecutor(args.concurrency) as pool:
            list(pool.map(one, range(args.rounds)))
        deadline = time.monotonic() + 60
        while len([n for n in answered if n in arrivals.first]) < len(answered) and time.monotonic() < deadline:
            time.sleep(0.05)
        latencies = [(arrivals.first[n] - t) * 1000 for n, t in answered.items() if n in arrivals.first]
        if not latencies:
            print(f"nothing reached the receiver: is {args.receiver_system} a PACS bound to {dept}, "
                  "and does the server run a deliverer?", file=sys.stderr)
            return 1
        results["latency_ms"] = {
            "delivered": len(latencies), "p50": round(percentile(latencies, 0.5), 1),
            "p90": round(percentile(latencies, 0.9), 1), "p99": round(percentile(latencies, 0.99), 1),
            "max": round(max(latencies), 1), "mean": round(statistics.mean(latencies), 1),
        }
        print("commit to delivery (ms):", json.dumps(results["latency_ms"]))

        # 2. throughput of the deliverers draining a backlog
        run("deliveries", "pause", args.receiver_system)
        before = arrivals.count
        numbers = []
        with ThreadPoolExecutor(args.concurrency) as pool:
            numbers = list(pool.map(lambda _: caller.released(dept), range(args.backlog)))
        time.sleep(1.0)
        resumed = time.monotonic()
        run("deliveries", "resume", args.receiver_system)
        deadline = time.monotonic() + 600
        while arrivals.count - before < len(numbers) and time.monotonic() < deadline:
            time.sleep(0.02)
        with arrivals.lock:
            last = max(arrivals.first[n] for n in numbers if n in arrivals.first)
            drained = sum(1 for n in numbers if n in arrivals.first)
        seconds = last - resumed
        results["drain"] = {"notifications": drained, "seconds": round(seconds, 2),
                            "per_second": round(drained / seconds, 1)}
        print("backlog drain:", json.dumps(results["drain"]))
    finally:
        subprocess.run([*cli, "systems", "callback-off", args.receiver_system], capture_output=True)
        server.shutdown()
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())

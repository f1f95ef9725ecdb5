"""Prometheus metrics at /metrics, correct across gunicorn's worker processes.

Two sources, each where it is exact:
- per-call counters and latency histograms are counted in the worker that served the call,
  in prometheus_client's multiprocess mode: `serve` creates a fresh directory for the
  files the workers share (PROMETHEUS_MULTIPROC_DIR) before it forks them, and a scrape of
  any worker adds up every worker's files, the exited ones' included;
- states (open and overdue critical values, outbox depth and age, a receiver's streak,
  auth failures per system, the database itself) are read from PostgreSQL at scrape
  time, so every worker answers the same and nothing is lost across restarts.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from datetime import datetime, timezone

log = logging.getLogger(__name__)

ENV = "PROMETHEUS_MULTIPROC_DIR"
# seconds; SOAP calls here take milliseconds to a few hundred, a slow database seconds
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def prepare_multiprocess_dir() -> str:
    """Before gunicorn forks: a fresh, private directory for the workers' metric files."""
    path = tempfile.mkdtemp(prefix="his-pacs-ws-metrics-")
    os.environ[ENV] = path
    return path


def remove_multiprocess_dir(path: str) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """gunicorn's child_exit hook: the worker's live gauges go; its counters stay counted."""
    if os.environ.get(ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


class Metrics:
    """The counters one process keeps, and the scrape."""

    def __init__(self, context, operations: set[str]):
        # imported here: prometheus_client picks its value store (files or memory) at import
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.context = context
        self.operations = operations
        self.own = CollectorRegistry(auto_describe=True)
        self.calls = Counter("his_pacs_ws_calls", "SOAP calls by service, operation and outcome (OK or the fault code)",
                             ["service", "operation", "outcome"], registry=self.own)
        self.latency = Histogram("his_pacs_ws_call_duration_seconds", "SOAP call latency, request read to response",
                                 ["service", "operation"], buckets=BUCKETS, registry=self.own)

    def observe(self, service: str, operation: str | None, outcome: str, seconds: float) -> None:
        # Labels are bounded: an operation not in the contract (anyone can send a body) is "other".
        operation = operation if operation in self.operations else "other"
        self.calls.labels(service, operation, outcome).inc()
        self.latency.labels(service, operation).observe(seconds)

    def scrape(self) -> bytes:
        from prometheus_client import CollectorRegistry, generate_latest

        if os.environ.get(ENV):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        else:  # a single process (tests, a debugger): its own counters are all there are
            registry = self.own
        counters = generate_latest(registry)
        return counters + _database_metrics(self.context)


def _family(lines: list[str], name: str, kind: str, help_text: str, samples: list[tuple[dict, float]]) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")
    for labels, value in samples:
        rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
        suffix = "_total" if kind == "counter" else ""
        lines.append(f"{name}{suffix}{{{rendered}}} {value}" if rendered else f"{name}{suffix} {value}")


def _escape(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _database_metrics(context) -> bytes:
    from his_pacs_ws.services.console import metrics_snapshot

    lines: list[str] = []
    started = time.perf_counter()
    try:
        snapshot = metrics_snapshot(context.uow())
        up = 1
    except Exception as exc:
        log.warning("metrics: the database could not be read: %s", type(exc).__name__)
        snapshot, up = None, 0
    _family(lines, "his_pacs_ws_database_up", "gauge", "1 when the database answered this scrape", [({}, up)])
    _family(lines, "his_pacs_ws_database_scrape_seconds", "gauge", "time to read the database figures",
            [({}, round(time.perf_counter() - started, 4))])
    if snapshot is None:
        return ("\n".join(lines) + "\n").encode("utf-8")
    _family(lines, "his_pacs_ws_critical_values_open", "gauge",
            "critical values not yet handled nor revoked", [({}, snapshot["critical_open"])])
    _family(lines, "his_pacs_ws_critical_values_overdue", "gauge",
            "critical values still unreceived past their deadline", [({}, snapshot["critical_overdue"])])
    _family(lines, "his_pacs_ws_auth_failures", "counter",
            "failed authentications of each known partner system", [
                ({"system": name}, count) for name, count in snapshot["auth_failures"]])
    now = datetime.now(timezone.utc)
    for metric, help_text, value in (
        ("his_pacs_ws_outbox_depth", "deliveries waiting (pending or retrying) per receiver", lambda q: q["waiting"]),
        ("his_pacs_ws_outbox_oldest_pending_age_seconds", "age of the oldest waiting delivery per receiver",
         lambda q: round((now - q["oldest_waiting_at"]).total_seconds(), 1) if q["oldest_waiting_at"] else 0),
        ("his_pacs_ws_outbox_failed", "deliveries given up (FAILED) per receiver", lambda q: q["failed"]),
        ("his_pacs_ws_receiver_failure_streak", "consecutive failed attempts per receiver",
         lambda q: q["failure_streak"]),
        ("his_pacs_ws_receiver_paused", "1 when deliveries to the receiver are paused",
         lambda q: 1 if q["paused"] else 0),
    ):
        _family(lines, metric, "gauge", help_text, [({"receiver": q["system"]}, value(q)) for q in snapshot["outbox"]])
    return ("\n".join(lines) + "\n").encode("utf-8")


_delivery_metrics = None
_delivery_lock = threading.Lock()  # a deliverer sends from several threads


def count_delivery_attempt(receiver: str, outcome: str, seconds: float) -> None:
    """One delivery attempt, counted in the deliverer process that made it. Deliverers
    started by `serve` share its metrics directory, so the web workers' scrape adds them."""
    global _delivery_metrics
    with _delivery_lock:
        if _delivery_metrics is None:
            _delivery_metrics = _make_delivery_metrics()
    attempts, duration = _delivery_metrics
    attempts.labels(receiver, outcome).inc()
    duration.labels(receiver).observe(seconds)


def _make_delivery_metrics():
    from prometheus_client import CollectorRegistry, Counter, Histogram

    registry = CollectorRegistry(auto_describe=True)
    return (
        Counter("his_pacs_ws_delivery_attempts", "delivery attempts by receiver and outcome",
                ["receiver", "outcome"], registry=registry),
        Histogram("his_pacs_ws_delivery_duration_seconds", "time of one delivery attempt, POST to answer",
                  ["receiver"], buckets=BUCKETS, registry=registry),
    )

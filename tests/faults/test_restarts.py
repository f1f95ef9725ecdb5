"""PostgreSQL stopped, crashed and restarted under load, and gunicorn workers killed:
clients that retry with the same MessageId see only successes and Server.Unavailable,
every effect happens exactly once, and every answered call has its call record (kept in
the spool while the database was away). `serve` started while the database is down waits
for it."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import requests
from sqlalchemy import create_engine, text

from tests.faults.client import call, get, pay, submit, unique
from tests.faults.conftest import start_server, stop_server, wait_healthy

CLIENTS = 8


class Workload:
    """CLIENTS threads walking submit, pay, read back; retrying Unavailable and dropped
    connections with the same MessageId, as the README tells integrators to."""

    def __init__(self, url: str):
        self.url = url
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.answers: list[tuple[float, str, str | None, object]] = []  # (at, operation, key, answer)
        self.paid: list[str] = []
        self.threads = [threading.Thread(target=self._client) for _ in range(CLIENTS)]

    def _until_done(self, session, operation: str, key: str, body: bytes):
        while True:
            answer = call(session, self.url, body, timeout=60)
            with self.lock:
                self.answers.append((time.monotonic(), operation, key, answer))
            if answer.status is not None and answer.fault != "Unavailable":
                return answer
            time.sleep(0.05)

    def _client(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            no, submitted, paid = unique("A"), unique("M"), unique("M")
            if not self._until_done(session, "SubmitApplication", submitted, submit(no, submitted)).ok:
                continue
            if self._until_done(session, "ConfirmPayment", paid, pay(no, paid)).ok:
                with self.lock:
                    self.paid.append(no)
            self._until_done(session, "GetApplication", None, get(no))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def first_ok_after(self, moment: float) -> float | None:
        with self.lock:
            times = [at - moment for at, _, _, a in self.answers if at >= moment and a.ok]
        return min(times) if times else None


def _wait_for_spool_drained(served, engine, timeout: float = 30) -> None:
    spool = served.home / "spool"
    deadline = time.monotonic() + timeout
    requests.get(served.url + "/health", timeout=10)
    while time.monotonic() < deadline:
        # a successful call's record replays whatever its worker spooled
        for _ in range(4):
            requests.post(served.url + "/ws/his", data=get("A-none"), timeout=10,
                          headers={"Content-Type": "text/xml"})
        if not spool.exists() or not any(spool.iterdir()):
            return
        time.sleep(0.2)
    raise AssertionError(f"spool not drained: {list(spool.iterdir())}")


def check_exactly_once_and_recorded(served, work: Workload, since) -> dict:
    engine = create_engine(served.pg.url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        _wait_for_spool_drained(served, engine)
        with engine.connect() as conn:
            for no in work.paid:
                lines = conn.execute(text(
                    "SELECT count(*) FROM charge_lines c JOIN applications a ON a.id = c.application_pk "
                    "WHERE a.application_no = :no"), {"no": no}).scalar()
                status = conn.execute(text("SELECT status FROM applications WHERE application_no = :no"),
                                      {"no": no}).scalar()
                assert (lines, status) == (1, "RELEASED"), no
            recorded = Counter(row[0] for row in conn.execute(text(
                "SELECT message_id FROM call_records WHERE caller = 'his-test' AND at >= :since "
                "AND operation IN ('SubmitApplication', 'ConfirmPayment')"), {"since": since}))
            recorded_total = conn.execute(text(
                "SELECT count(*) FROM call_records WHERE caller = 'his-test' AND at >= :since "
                "AND operation IN ('SubmitApplication', 'ConfirmPayment', 'GetApplication') "
                "AND coalesce(application_no, '') <> 'A-none'"), {"since": since}).scalar()
    finally:
        engine.dispose()
    answered = [(op, key, a) for _, op, key, a in work.answers if a.status is not None]
    faults = Counter(a.fault for _, _, a in answered if a.fault)
    assert set(faults) <= {"Unavailable"}, faults
    return {"answers": len(answered), "unavailable": faults["Unavailable"],
            "dropped": len(work.answers) - len(answered), "recorded": recorded_total,
            "recorded_by_message": recorded}


def test_database_stopped_crashed_and_restarted_under_load(served):
    from datetime import datetime, timezone

    since = datetime.now(timezone.utc)
    recoveries = {}
    with Workload(served.url) as work:
        time.sleep(1.5)
        for name, down, pause in [("stop/start", served.pg.stop, 1.5), ("crash", served.pg.crash, 1.0),
                                  ("restart", None, 0.0)]:
            if down is not None:
                down()
                time.sleep(pause)
            started = time.monotonic()  # from the moment PostgreSQL is started again
            served.pg.restart() if down is None else (served.pg.start(), served.pg.wait_ready())
            time.sleep(2)
            recoveries[name] = work.first_ok_after(started)
    figures = check_exactly_once_and_recorded(served, work, since)
    by_message = figures.pop("recorded_by_message")
    answered = Counter(key for _, op, key, a in work.answers
                       if a.status is not None and op != "GetApplication")
    print(f"\nFIGURES database stop/start, crash, restart under {CLIENTS} clients: {figures}; "
          f"{len(work.paid)} paid; first success after each start (s): "
          + ", ".join(f"{k} {v:.2f}" if v is not None else f"{k} none" for k, v in recoveries.items()))
    assert figures["dropped"] == 0
    assert figures["unavailable"] > 0  # the faults did happen while the clients were calling
    assert all(v is not None and v < 5 for v in recoveries.values()), recoveries
    assert by_message == answered  # every answered call is recorded, once
    assert figures["recorded"] == figures["answers"]


def test_workers_killed_under_load(served):
    from datetime import datetime, timezone

    since = datetime.now(timezone.utc)
    killed = 0
    with Workload(served.url) as work:
        for _ in range(6):
            time.sleep(0.7)
            pids = served.worker_pids()
            if pids:
                os.kill(pids[killed % len(pids)], signal.SIGKILL)
                killed += 1
        time.sleep(1.5)
    figures = check_exactly_once_and_recorded(served, work, since)
    figures.pop("recorded_by_message")
    print(f"\nFIGURES {killed} workers SIGKILLed under {CLIENTS} clients: {figures}; {len(work.paid)} paid")
    assert killed == 6 and len(work.paid) > 0
    # every answered call is recorded (the record is written before the answer is sent); a
    # call whose worker was killed has no answer, and a record only if it got that far
    assert figures["answers"] <= figures["recorded"] <= figures["answers"] + figures["dropped"]


def test_serve_waits_for_a_database_that_is_down(pg, served):
    pg.stop()
    waiting = None
    try:
        waiting = start_server(pg, served.home, workers=1, wait=False, log_name="waiting.log")
        deadline = time.monotonic() + 30
        while "waiting for the database" not in waiting.log_path.read_text() and time.monotonic() < deadline:
            assert waiting.process.poll() is None, waiting.log_path.read_text()
            time.sleep(0.2)
        time.sleep(3)  # and it keeps waiting
        assert waiting.process.poll() is None, waiting.log_path.read_text()
        log = waiting.log_path.read_text()
        assert "waiting for the database" in log and "Traceback" not in log, log
        pg.start()
        pg.wait_ready()
        up = wait_healthy(waiting, 30)
        print(f"\nFIGURES serve waited for the database; healthy {up:.2f} s after it started")
        assert up < 10
    finally:  # whatever failed, the database is up again and the waiting server gone
        if pg.process.poll() is not None:
            pg.start()
            pg.wait_ready()
        if waiting is not None:
            stop_server(waiting)

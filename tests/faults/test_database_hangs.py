"""A database that hangs instead of refusing (frozen with SIGSTOP, a lock held forever):
calls answer Server.Unavailable within a few seconds, /health says 503, the WSDL is
always served, and the service recovers by itself when the database answers again."""

from __future__ import annotations

import threading
import time

import psycopg
import requests

from tests.faults.client import call, get, pay, submit, unique
from tests.faults.conftest import DB_TIMEOUT

BOUND = DB_TIMEOUT + 3  # the slowest acceptable answer while the database hangs, in seconds


def load(url: str, stop: threading.Event, answers: list, nos: list[str]) -> None:
    session = requests.Session()
    while not stop.is_set():
        no = unique("A")
        answers.append((time.monotonic(), call(session, url, submit(no, unique("M")), timeout=60)))
        answers.append((time.monotonic(), call(session, url, get(nos[0]), timeout=60)))


def test_a_frozen_database_is_unavailable_within_seconds_and_the_wsdl_is_served(served):
    session = requests.Session()
    no = unique("A")
    assert call(session, served.url, submit(no, unique("M"))).ok
    stop, answers = threading.Event(), []
    clients = [threading.Thread(target=load, args=(served.url, stop, answers, [no])) for _ in range(4)]
    for client in clients:
        client.start()
    time.sleep(1)
    served.pg.freeze()
    frozen_at = time.monotonic()
    try:
        first = call(session, served.url, get(no), timeout=60)
        health_started = time.monotonic()
        health = requests.get(served.url + "/health", timeout=60)
        health_seconds = time.monotonic() - health_started
        wsdl_seconds = []
        for _ in range(5):
            started = time.monotonic()
            wsdl = requests.get(served.url + "/ws/pacs?wsdl", timeout=60)
            wsdl_seconds.append(time.monotonic() - started)
            assert wsdl.status_code == 200 and b"definitions" in wsdl.content
            time.sleep(0.5)
        time.sleep(max(0.0, 6 - (time.monotonic() - frozen_at)))
    finally:
        served.pg.thaw()
    thawed_at = time.monotonic()
    recovered = None
    while time.monotonic() - thawed_at < 30:
        if call(session, served.url, get(no)).ok:
            recovered = time.monotonic() - thawed_at
            break
        time.sleep(0.05)
    time.sleep(1)
    stop.set()
    for client in clients:
        client.join(timeout=120)
    during = [a for at, a in answers if frozen_at <= at <= thawed_at]
    print(f"\nFIGURES frozen 6 s: first call {first.fault} in {first.seconds:.2f} s; /health "
          f"{health.status_code} in {health_seconds:.2f} s; ?wsdl in {max(wsdl_seconds):.2f} s at most; "
          f"{len(during)} answers while frozen ({sum(not a.ok for a in during)} Unavailable), slowest "
          f"{max(a.seconds for _, a in answers):.2f} s; recovered {recovered} s after thaw")
    assert first.fault == "Unavailable" and first.seconds < BOUND
    assert health.status_code == 503 and health_seconds < BOUND
    assert max(wsdl_seconds) < 2
    assert recovered is not None and recovered < 5
    assert all(a.status is not None for _, a in answers), "a connection was dropped"
    assert {a.fault for _, a in answers} <= {None, "Unavailable"}
    assert max(a.seconds for _, a in answers) < BOUND


def test_a_lock_held_forever_is_unavailable_within_seconds(served):
    session = requests.Session()
    no, message_id = unique("A"), unique("M")
    assert call(session, served.url, submit(no, unique("M"))).ok
    with psycopg.connect(served.pg.url) as holder:
        holder.execute("LOCK TABLE applications IN ACCESS EXCLUSIVE MODE")
        blocked = call(session, served.url, pay(no, message_id), timeout=60)
        assert requests.get(served.url + "/health", timeout=BOUND).status_code == 200  # the database answers
        holder.rollback()
    print(f"\nFIGURES lock held: {blocked.fault} in {blocked.seconds:.2f} s")
    assert blocked.fault == "Unavailable" and blocked.seconds < BOUND
    assert call(session, served.url, pay(no, message_id)).ok  # the retry, same MessageId, applies once

"""Push delivery across a database that is restarted and crashed while notifications are in
flight: after it returns, every notification of a committed change arrives, each applied once."""

from __future__ import annotations

import os
import time

import requests

from tests.faults.client import call, pay, submit, unique
from tests.soap.conftest import run_cli
from tests.soap.push import Receiver

ROUNDS = 12


def released(session, url: str) -> str:
    """An application submitted and paid, retried with the same MessageIds until answered."""
    no, submitted, paid = unique("A"), unique("M"), unique("M")
    for body in (submit(no, submitted), pay(no, paid)):
        deadline = time.monotonic() + 90
        while True:
            answer = call(session, url, body, timeout=30)
            if answer.ok:
                break
            assert answer.status is None or answer.fault == "Unavailable", answer
            assert time.monotonic() < deadline, "the service did not come back"
            time.sleep(0.1)
    return no


def test_nothing_is_lost_when_the_database_restarts_or_crashes_during_delivery(pg, served, tmp_path):
    receiver = Receiver("pacs", tmp_path, "--slow", "0.3", "--quiet").start()
    env = {**os.environ, "HIS_PACS_DATA_DIR": str(served.home)}
    for args, stdin in ((["systems", "add", "pacs-push", "--role", "PACS", "--departments", "CT", "--password-stdin"],
                         "pacs-push-password-1\n"),
                        (["systems", "set-callback", "pacs-push", "--url", receiver.url], None)):
        done = run_cli(*args, "--database-url", pg.url, env=env, stdin=stdin)
        assert done.returncode == 0, done.stderr
    session = requests.Session()
    try:
        numbers = [released(session, served.url) for _ in range(ROUNDS)]
        time.sleep(0.5)  # some are being delivered now (the receiver takes 0.3 s each)
        pg.restart()
        numbers += [released(session, served.url) for _ in range(ROUNDS)]
        time.sleep(0.5)
        pg.crash()  # asynchronous commits of leases and outcomes may be lost: sent again, same MessageId
        pg.start()
        pg.wait_ready()
        numbers += [released(session, served.url) for _ in range(ROUNDS)]
        receiver.wait_for(lambda es: {e["application_no"] for e in es if e["outcome"] == "applied"} >= set(numbers),
                          timeout=120, what=f"the {len(numbers)} applications at the receiver")
    finally:
        receiver.stop()
    applied = [e for e in receiver.entries() if e["outcome"] == "applied"]
    assert sorted(e["application_no"] for e in applied) == sorted(numbers)  # each once in effect
    repeats = [e for e in receiver.entries() if e["outcome"] == "duplicate"]
    assert all(e["message_id"] in {a["message_id"] for a in applied} for e in repeats)
    print(f"{len(numbers)} applications, {len(applied)} applied, {len(repeats)} repeats dropped by MessageId")

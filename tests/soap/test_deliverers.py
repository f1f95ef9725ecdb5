"""Several deliverers on one database: they share the work, never send one notification at
the same time, keep each application's order, and a killed one loses nothing."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import defaultdict

from tests.soap.conftest import DOCTOR, T0, unique
from tests.soap.push import start_deliverer
from tests.soap.test_push import department, paid_application, push  # noqa: F401 (fixture)


def sender_pid(entry: dict) -> int:
    return int(re.search(r"pid (\d+)", entry["sender"]).group(1))


def test_deliverers_share_the_work_in_order_and_survive_a_kill(his, push, server, database_url, tmp_path):
    receiver = push.receiver("pacs", "--slow", "0.4", "--quiet")
    dept = department()
    push.system("PACS", receiver, departments=dept)
    extra = [start_deliverer(database_url, server.env, tmp_path / f"deliver-{i}.log") for i in range(2)]
    try:
        time.sleep(3)  # both up and listening
        numbers = [paid_application(his, dept) for _ in range(8)]
        for number in numbers:
            his.CancelApplication(request={"MessageId": unique("M"), "ApplicationNo": number, "Reason": "患者要求",
                                           "Operator": DOCTOR, "CancelledAt": T0})
        # kill one of our deliverers while it has a request in flight (arrived, not yet
        # answered): whichever is seen sending first, since the claims go to whoever is free
        ours = {process.pid: process for process in extra}
        deadline = time.monotonic() + 30
        while not (sending := {sender_pid(e) for e in receiver.entries(arrivals=True)} & set(ours)):
            assert time.monotonic() < deadline, "neither of the extra deliverers ever sent anything"
            time.sleep(0.05)
        victim = min(sending)
        os.kill(victim, signal.SIGKILL)
        killed_at = time.time()
        ours[victim].wait(timeout=10)
        receiver.wait_for(lambda es: len({e["message_id"] for e in es if e["outcome"] == "applied"}) >= 16,
                          timeout=60, what="all 16 notifications applied")
    finally:
        for process in extra:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)

    answered = receiver.entries()
    applied = [e for e in answered if e["outcome"] == "applied"]
    assert len(applied) == 16 == len({e["message_id"] for e in applied})  # once in effect each
    assert len({sender_pid(e) for e in answered}) >= 2  # the work was shared
    by_application = defaultdict(list)
    for entry in applied:
        by_application[entry["application_no"]].append(entry)
    for entries in by_application.values():
        assert [e["request"]["Application"]["Status"] for e in entries] == ["RELEASED", "CANCELLED"]
    # a notification is sent by one deliverer at a time, and an application's next one only after
    # the previous was answered; the killed deliverer's last request may overlap its own resend
    alive = [e for e in answered if sender_pid(e) != victim or e["finished"] < killed_at]
    for key in ("message_id", "application_no"):
        groups = defaultdict(list)
        for entry in alive:
            groups[entry[key]].append(entry)
        for entries in groups.values():
            entries.sort(key=lambda e: e["started"])
            for before, after in zip(entries, entries[1:]):
                assert after["started"] >= before["finished"] - 0.001, (key, before, after)

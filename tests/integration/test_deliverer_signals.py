"""A deliverer stops on SIGTERM however the signal lands. Python runs a signal handler in
the main thread between any two bytecodes, possibly while that thread holds the stop
Event's lock (inside its wait() or set(), or an earlier handler's set()): a handler that
takes the lock again deadlocks, and the deliverer never exits. Seen: one orphaned by a
killed `serve` hung for an hour in exactly that stack."""

from __future__ import annotations

import signal
import threading

from his_pacs_ws import delivery
from his_pacs_ws.config import Settings


def test_the_stop_signal_handler_takes_no_lock(database_url, tmp_path):
    deliverer = delivery.Deliverer(Settings(data_dir=tmp_path), database_url, threads=1)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        received = deliverer.stop_on_signals()
        handler = signal.getsignal(signal.SIGTERM)
        with deliverer.stop._cond:  # as if the signal interrupted the main thread in there
            handled = threading.Thread(target=handler, args=(signal.SIGTERM, None), daemon=True)
            handled.start()
            handled.join(timeout=3)
            assert not handled.is_alive(), "the handler waits for the lock its own thread holds"
        assert received == [signal.SIGTERM]
    finally:
        for signum, previous in before.items():
            signal.signal(signum, previous)
        deliverer.engine.dispose()


def test_a_signal_noted_by_the_handler_stops_the_run(database_url, tmp_path):
    deliverer = delivery.Deliverer(Settings(data_dir=tmp_path), database_url, threads=1)
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    stopping = threading.Timer(0.5, lambda: signal.raise_signal(signal.SIGTERM))
    try:
        stopping.start()
        deliverer.run()  # returns once the handler has noted the signal
        assert deliverer.stop.is_set()
    finally:
        stopping.cancel()
        for signum, previous in before.items():
            signal.signal(signum, previous)

"""What a deliverer does for each committed change: nothing at all while no system has a
callback (the events are marked by its poll, in one statement), and with one, one fan-out
and one sender's claim per commit, not one of each per thread.

These tests run on a database of their own: the other tests' callbacks would be receivers."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url

from his_pacs_ws import delivery
from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork, make_engine, session_factory
from his_pacs_ws.services import deliveries
from his_pacs_ws.services.secrets import SecretBox
from his_pacs_ws.services.systems import add_system
from tests.conftest import migrated_database
from tests.integration.conftest import Hospital, unique

BOX = SecretBox(b"c" * 32)


@pytest.fixture(scope="module")
def own_url(database_url):
    """A fresh, migrated database on the suite's server, dropped afterwards."""
    admin = make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    with migrated_database(admin, "his_pacs_cost") as url:
        yield url


@pytest.fixture(scope="module")
def own(own_url):
    engine = make_engine(own_url, pool_size=4)
    sessions = session_factory(engine)
    yield sessions
    engine.dispose()


@pytest.fixture
def hospital(own):
    with own() as session:  # each test starts with no system anywhere
        for statement in ("DELETE FROM deliveries", "DELETE FROM callback_endpoints",
                          "DELETE FROM systems", "UPDATE outbox_events SET fanned_out = true"):
            session.execute(text(statement))
        session.commit()
    return Hospital(own, Settings())


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def notifications_of(url: str, change) -> list[str]:
    """The payloads on the outbox channel that ``change()`` caused: collected until a marker
    sent after it arrives (one session's notifications arrive in commit order)."""
    with psycopg.connect(libpq(url), autocommit=True) as listener:
        listener.execute("LISTEN his_pacs_outbox")
        change()
        with psycopg.connect(libpq(url), autocommit=True) as marker:
            marker.execute("SELECT pg_notify('his_pacs_outbox', 'marker')")
        payloads = []
        for notification in listener.notifies(timeout=30):
            if notification.payload == "marker":
                return payloads
            payloads.append(notification.payload)
    raise AssertionError(f"the marker never arrived; got {payloads}")


def subscribe(own, role: str = "HIS", *, paused: bool = True) -> str:
    """A new system with a callback; paused, so that nothing is sent (its queue is kept)."""
    name = unique("cost-")
    add_system(UnitOfWork(own), BOX, name, role, "password-12345", None)
    deliveries.set_callback(UnitOfWork(own), BOX, name, url="http://127.0.0.1:9/", events=None, username=None,
                            password=None, password_type="digest", timeout_seconds=1)
    if paused:
        deliveries.set_paused(UnitOfWork(own), name, True)
    return name


def pending_events(own) -> int:
    with own() as session:
        return session.scalar(text("SELECT count(*) FROM outbox_events WHERE NOT fanned_out"))


def delivered_applications(own, system: str) -> set[str]:
    with own() as session:
        return set(session.scalars(text(
            "SELECT d.application_no FROM deliveries d JOIN systems s ON s.id = d.system_pk WHERE s.name = :n"),
            {"n": system}))


class Statements:
    """Every statement a deliverer's engine runs, by the thread that ran it."""

    def __init__(self, engine):
        self.seen: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        event.listen(engine, "before_cursor_execute", self._add)

    def _add(self, conn, cursor, statement, parameters, context, executemany):
        with self._lock:
            self.seen.append((threading.current_thread().name, " ".join(statement.split())))

    def since(self, mark: int) -> list[tuple[str, str]]:
        with self._lock:
            return self.seen[mark:]

    def mark(self) -> int:
        with self._lock:
            return len(self.seen)

    def settle(self, quiet: float = 0.5) -> None:
        """Until no statement has come for ``quiet`` seconds: whatever was set off is done."""
        while True:
            before = self.mark()
            time.sleep(quiet)
            if self.mark() == before:
                return


def wait_until(done, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.05)


@pytest.fixture
def deliverer(own_url, monkeypatch, tmp_path):
    """A deliverer of four senders on the database, in this process, whose poll never comes
    during a test: whatever it does, a notification made it do."""
    monkeypatch.setattr(delivery, "POLL_SECONDS", 3600.0)
    monkeypatch.setattr(delivery, "SENDER_IDLE_SECONDS", 3600.0)
    running = delivery.Deliverer(Settings(data_dir=tmp_path), own_url, threads=4)
    statements = Statements(running.engine)
    threads = running.start()
    with psycopg.connect(libpq(own_url), autocommit=True) as probe:
        wait_until(lambda: probe.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                         "AND query LIKE 'LISTEN%'").fetchone()[0] > 0, "the deliverer listening")
    statements.settle(quiet=1.0)  # its first passes, and those the connection's ring set off
    running.statements = statements
    yield running
    running.stop.set()
    running.finish(threads)


def test_with_no_callback_anywhere_a_change_notifies_nobody(own_url, hospital):
    assert notifications_of(own_url, hospital.released) == []


def test_with_a_callback_a_change_notifies_the_fan_out_once(own_url, own, hospital):
    subscribe(own)
    # a payment writes three events in one transaction: one notification, for the fan-out only
    assert notifications_of(own_url, hospital.released) == ["event"]


def test_with_no_callback_the_fan_out_only_marks_the_events_in_one_statement(own, hospital):
    numbers = [hospital.released() for _ in range(5)]
    statements = Statements(own.kw["bind"])
    try:
        assert deliveries.fan_out(UnitOfWork(own), timedelta(hours=1)) == 15
    finally:
        event.remove(own.kw["bind"], "before_cursor_execute", statements._add)
    assert pending_events(own) == 0
    touching = [s for _, s in statements.seen if "outbox_events" in s]
    assert len(touching) == 1 and touching[0].startswith("UPDATE outbox_events SET fanned_out"), touching
    assert not any("deliveries" in s for _, s in statements.seen)
    # a callback set afterwards receives what is fanned out after it, not these
    name = subscribe(own)
    later = hospital.released()
    while deliveries.fan_out(UnitOfWork(own), timedelta(hours=1)):
        pass
    assert delivered_applications(own, name) == {later}
    assert not set(numbers) & delivered_applications(own, name)


def test_a_deliverer_does_nothing_for_changes_nobody_can_receive(own, hospital, deliverer):
    mark = deliverer.statements.mark()
    numbers = [hospital.released() for _ in range(10)]
    time.sleep(1.0)  # had it been told, it would have fanned out by now
    assert deliverer.statements.since(mark) == []
    assert pending_events(own) == 30
    # its poll (here: any other notification) marks them all, without a statement per event
    mark = deliverer.statements.mark()
    with own() as session:
        session.execute(text("SELECT pg_notify('his_pacs_outbox', '')"))
        session.commit()
    wait_until(lambda: pending_events(own) == 0, "every event marked")
    touching = [s for _, s in deliverer.statements.since(mark) if "outbox_events" in s and "fanned_out" in s]
    assert len(touching) <= 2, touching  # one UPDATE (and one finding none left, at most)
    # a callback set now gets the changes from now on
    name = subscribe(own)
    later = hospital.released()
    wait_until(lambda: delivered_applications(own, name) == {later}, "the later change fanned out")
    assert not set(numbers) & delivered_applications(own, name)


def test_with_a_callback_one_commit_costs_one_fan_out_and_one_claim(own, hospital, deliverer):
    subscribe(own)
    mark = deliverer.statements.mark()
    number = hospital.released()
    wait_until(lambda: any("SKIP LOCKED" in s for _, s in deliverer.statements.since(mark)), "a sender's claim")
    deliverer.statements.settle()  # every thread that was woken has run
    ran = deliverer.statements.since(mark)
    fan_outs = [t for t, s in ran if "pg_try_advisory_xact_lock" in s]
    claims = [t for t, s in ran if "SKIP LOCKED" in s]
    assert fan_outs == ["fan-out"], ran
    assert len(claims) == 1, ran
    with own() as session:
        assert session.scalar(text("SELECT count(*) FROM deliveries WHERE application_no = :n"), {"n": number}) == 2


def test_outcomes_kept_in_one_statement_only_under_the_lease_still_held(own, hospital):
    from datetime import datetime, timezone

    subscribe(own, paused=False)
    hospital.released()
    hospital.released()  # two applications: two heads of their queues
    while deliveries.fan_out(UnitOfWork(own), timedelta(hours=1)):
        pass
    with UnitOfWork(own) as uow:
        claimed = uow.outbox.claim(10, "a" * 32, 10)
        uow.commit()
    assert len(claimed) == 2
    mine, stolen = claimed
    with own() as session:  # the second one's lease ran out and another deliverer has it now
        session.execute(text("UPDATE deliveries SET lease_token = :t WHERE id = :id"), {"t": "b" * 32, "id": stolen.id})
        session.commit()
    at = datetime(2026, 12, 2, 8, 0, tzinfo=timezone.utc)
    with UnitOfWork(own) as uow:
        owned = uow.outbox.finish("a" * 32, [
            (mine.id, {"status": "DELIVERED", "delivered_at": at, "last_outcome": "DELIVERED",
                       "last_http_status": 200, "last_fault_code": None, "last_error": None}),
            (stolen.id, {"status": "RETRYING", "next_attempt_at": at, "last_outcome": "TIMEOUT",
                         "last_http_status": None, "last_fault_code": None, "last_error": "no answer"}),
        ])
        uow.commit()
    assert owned == {mine.id}
    with own() as session:
        rows = {row.id: row for row in session.execute(text(
            "SELECT id, status, attempts, delivered_at, next_attempt_at, last_http_status, lease_token, lease_until "
            "FROM deliveries WHERE id IN (:a, :b)"), {"a": mine.id, "b": stolen.id})}
    assert (rows[mine.id].status, rows[mine.id].attempts, rows[mine.id].delivered_at,
            rows[mine.id].last_http_status, rows[mine.id].lease_token, rows[mine.id].lease_until) == (
        "DELIVERED", 1, at, 200, None, None)
    assert (rows[stolen.id].status, rows[stolen.id].attempts, rows[stolen.id].lease_token) == ("PENDING", 0, "b" * 32)

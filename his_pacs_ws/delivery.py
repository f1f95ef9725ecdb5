"""The deliverer: `his-pacs-ws deliver`, and what `serve` starts beside gunicorn.

One thread per process fans new outbox events out to their receivers (one fan-out at a
time across every deliverer, under an advisory lock). Sender threads claim deliveries with
FOR UPDATE SKIP LOCKED (so deliverers on any number of machines share the work and never
send one at the same time), post them to the partners' callbacks, and commit the outcome.
LISTEN/NOTIFY wakes the fan-out the moment a change commits (when some system has a
callback at all: migration 0008), and the fan-out wakes the senders when it made
deliveries; a short poll picks up retries that come due and marks the events nobody can
receive. A delivery in flight when its deliverer dies is sent again, with the same MessageId.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlsplit

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import make_engine
from his_pacs_ws.db.notify import listen
from his_pacs_ws.db.outbox import Claimed
from his_pacs_ws.domain.errors import Unavailable
from his_pacs_ws.domain.notifications import DeliveryStatus, Notification, Outcome
from his_pacs_ws.services import critical_values, deliveries
from his_pacs_ws.services.context import Context
from his_pacs_ws.services.secrets import SecretBox, load_key
from his_pacs_ws.soap.app import without_credentials
from his_pacs_ws.soap.callbacks import read_answer, request_body, security_header
from his_pacs_ws.web.metrics import count_delivery_attempt

log = logging.getLogger(__name__)

CHANNEL = "his_pacs_outbox"
BATCH = 10
POLL_SECONDS = 1.0
SENDER_IDLE_SECONDS = 10.0
COALESCE_SECONDS = 0.05
OVERDUE_EVERY_SECONDS = 5.0
SIGNAL_CHECK_SECONDS = 0.2  # how soon a noted SIGTERM stops the run
MAX_ANSWER_BYTES = 1024 * 1024
TOUCH_SECONDS = 5.0
LEASE_MARGIN_SECONDS = 10  # beyond an attempt's timeout  # how stale a receiver's "last success" may be


class Wakeup:
    """Deliverer threads sleep here until a NOTIFY (or the poll interval) wakes them."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._generation = 0

    def ring(self, *, one: bool = False) -> None:
        """Wake every sleeper, or ``one``: a thread that was busy looks again either way."""
        with self._cond:
            self._generation += 1
            if one:
                self._cond.notify()
            else:
                self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> int:
        with self._cond:
            if self._generation == seen:
                self._cond.wait(timeout)
            return self._generation


class HttpPoster:
    """Keep-alive connections to the receivers, one set per thread."""

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str], http.client.HTTPConnection] = {}

    def post(self, url: str, body: bytes, action: str, timeout: float) -> tuple[int, bytes]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"',
                   "User-Agent": f"his-pacs-ws deliverer (pid {os.getpid()})"}
        for attempt in (1, 2):
            reused = key in self._connections
            conn = self._connections.get(key) or self._open(parts, timeout)
            self._connections[key] = conn
            try:
                if conn.sock is None:
                    conn.connect()
                    # headers and body are separate writes: without this, Nagle and the
                    # receiver's delayed ACK cost ~40 ms a notification
                    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sock.settimeout(timeout)
                conn.request("POST", path, body, headers)
                response = conn.getresponse()
                answer = response.read(MAX_ANSWER_BYTES + 1)
                if response.will_close or len(answer) > MAX_ANSWER_BYTES:
                    self.drop(key)
                return response.status, answer[:MAX_ANSWER_BYTES]
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.drop(key)
                if not reused or attempt == 2:  # a fresh connection failed: the receiver's doing
                    raise
            except BaseException:
                self.drop(key)
                raise
        raise AssertionError("unreachable")

    @staticmethod
    def _open(parts, timeout: float) -> http.client.HTTPConnection:
        if parts.scheme == "https":
            return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout)
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def drop(self, key) -> None:
        conn = self._connections.pop(key, None)
        if conn is not None:
            conn.close()


@dataclass(frozen=True)
class Attempt:
    kind: Notification
    started_at: datetime
    finished_at: datetime
    duration_ms: Decimal
    body: bytes
    outcome: Outcome
    code: str | None
    message: str | None
    status: int | None
    answer: bytes


class Deliverer:
    def __init__(self, settings: Settings, database_url: str, *, threads: int | None = None):
        self.settings = settings
        self.threads = threads or settings.delivery_threads
        self.policy = settings.retry_policy
        # a connection per sender, the fan-out's and the overdue sweep's (the listener has its own)
        self.database_url = database_url
        self.engine = make_engine(database_url, pool_size=self.threads + 2)
        self.context = Context(settings, self.engine)
        self.box = SecretBox(load_key(settings.secret_key, settings.data_dir, create=False)) \
            if settings.secret_key or (settings.data_dir / "secret.key").exists() else None
        self.stop = threading.Event()
        self.events = Wakeup()  # new outbox events: the fan-out thread
        self.senders = Wakeup()  # new deliveries (or a retry, a resume): the sender threads
        self._secrets: dict[tuple[int, bytes], str] = {}
        self._touched: dict[int, float] = {}  # when this process last wrote a receiver's last success

    # --- the process
    def start(self) -> list[threading.Thread]:
        """The listener, the fan-out and the sender threads, started."""
        threads = [threading.Thread(target=self._listen, name="listen", daemon=True),
                   threading.Thread(target=self._fan_out, name="fan-out", daemon=True),
                   *(threading.Thread(target=self._work, name=f"deliver-{i}", daemon=True)
                     for i in range(self.threads))]
        for thread in threads:
            thread.start()
        return threads

    def finish(self, threads: list[threading.Thread]) -> None:
        """After ``stop`` is set: every thread woken, joined, the connections closed."""
        self.events.ring()
        self.senders.ring()
        for thread in threads:
            thread.join(timeout=30)
        self.engine.dispose()

    def stop_on_signals(self) -> list[int]:
        """SIGTERM and SIGINT stop the run. The handler only notes the signal: Python runs
        it in the main thread between any two bytecodes, maybe while that thread holds the
        stop Event's lock (in its wait or set), and taking the lock again there deadlocks."""
        received: list[int] = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda number, _frame: received.append(number))
        return received

    def run(self) -> None:
        received = self.stop_on_signals()
        threads = self.start()
        log.info("deliverer started: %d threads", self.threads)
        overdue_at = time.monotonic() + OVERDUE_EVERY_SECONDS
        while not received and not self.stop.is_set():
            self.stop.wait(SIGNAL_CHECK_SECONDS)
            if not received and time.monotonic() >= overdue_at:
                self._guarded(lambda: critical_values.notify_overdue(self.context.uow(), self.settings))
                overdue_at = time.monotonic() + OVERDUE_EVERY_SECONDS
        self.stop.set()  # the other threads' wake-up, outside any handler
        self.finish(threads)
        log.info("deliverer stopped")

    def _guarded(self, step) -> object:
        try:
            return step()
        except Unavailable:
            log.warning("deliverer: database unavailable; trying again")
        except Exception as exc:  # never let one bad row stop the deliverer
            log.error("deliverer: %s", type(exc).__name__, exc_info=log.isEnabledFor(logging.DEBUG))
        self.stop.wait(1.0)
        return None

    def _listen(self) -> None:
        """LISTEN on the outbox channel: a committed event rings the fan-out, new deliveries
        (another deliverer's fan-out too) one sender; anything else everyone."""
        while not self.stop.is_set():
            try:
                listen(self.database_url, CHANNEL, self.notified, self.stop)
            except Exception as exc:
                log.warning("deliverer: listening failed (%s); polling until it works again", type(exc).__name__)
                self.stop.wait(1.0)

    def notified(self, payload: str | None) -> None:
        if payload == "event":
            self.events.ring()
        elif payload == "deliveries":
            self.senders.ring(one=True)  # it rings another if there is more than it can take
        else:  # connected (whatever came before), a retry, a resume
            self.events.ring()
            self.senders.ring()

    def _fan_out(self) -> None:
        """Fan new events out as they commit; every POLL_SECONDS also the events nobody was
        told of, and one idle sender looks for retries that came due (one claim a second per
        process, not one per sender)."""
        seen, last, tick = 0, 0.0, time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - tick >= POLL_SECONDS:
                tick = time.monotonic()
                self.senders.ring(one=True)
            last = time.monotonic()
            fanned = self._guarded(lambda: deliveries.fan_out(self.context.uow(), self.policy.max_age))
            if fanned == deliveries.FAN_OUT_BATCH:
                continue  # more are waiting
            seen = self.events.wait(seen, max(0.0, POLL_SECONDS - (time.monotonic() - tick)))
            # under a burst of commits, one pass for all that came within COALESCE_SECONDS
            self.stop.wait(max(0.0, COALESCE_SECONDS - (time.monotonic() - last)))

    def _work(self) -> None:
        poster = HttpPoster()
        seen = 0
        while not self.stop.is_set():
            sent = self._guarded(lambda: self.deliver_batch(poster))
            if sent:
                if sent == BATCH:
                    self.senders.ring(one=True)  # a backlog: another sender helps
                continue
            # rung by new deliveries, or by the fan-out's poll; the timeout is a safety net
            seen = self.senders.wait(seen, SENDER_IDLE_SECONDS)

    # --- one batch
    def deliver_batch(self, poster: HttpPoster) -> int:
        """Lease up to BATCH deliveries, send them, settle their outcomes; how many were sent.

        No transaction is open while a partner is called: a slow receiver holds no row lock
        and no transaction id (view-mode readers and vacuum never wait for it). A lease keeps
        other deliverers off a row for its timeout and a margin; when a batch runs long, the
        outcomes so far are settled and each further lease renewed before its attempt, so a
        lease never runs out under a live deliverer. A deliverer that dies leaves its rows to
        the others when their leases run out. Leases and outcomes are committed without
        waiting for the disk: a crash can only cause a notification to be sent again, with
        its MessageId."""
        token = uuid.uuid4().hex
        with self.context.uow() as uow:
            uow.outbox.relax_durability()
            claimed = uow.outbox.claim(BATCH, token, LEASE_MARGIN_SECONDS)
            if not claimed:
                return 0
            uow.commit()
        leased_at = time.monotonic()
        done: list[tuple[Claimed, Attempt | None]] = []  # not yet settled; None: give it back
        down: set[int] = set()  # receivers found unreachable in this batch: leave theirs for later
        sent = 0
        for item in claimed:
            if item.system_pk in down or self.stop.is_set():
                done.append((item, None))
                continue
            if time.monotonic() - leased_at > LEASE_MARGIN_SECONDS / 2:
                owned = self._settle_all(done, token, renew=item)
                done = []
                if not owned:  # another deliverer has it now
                    continue
            attempt = self._attempt(poster, item)
            done.append((item, attempt))
            sent += 1
            if attempt.outcome.receiver_down:
                down.add(item.system_pk)
        self._settle_all(done, token)
        return sent

    def _settle_all(self, done: list, token: str, renew: Claimed | None = None) -> bool:
        """Keep the outcomes (and give back the rows not attempted) in one transaction; renew
        ``renew``'s lease in it. Whether that lease is still ours."""
        with self.context.uow() as uow:
            uow.outbox.relax_durability()
            records, outcomes, answered = [], [], {}
            for item, attempt in done:
                if attempt is None:
                    uow.outbox.release(item.id, token)
                else:
                    record, values = self._settle(uow, item, attempt, answered)
                    records.append(record)
                    outcomes.append((item.id, values))
            owned = uow.outbox.finish(token, outcomes)
            for pk, _ in outcomes:
                if pk not in owned:
                    log.warning("delivery %d: its lease ran out before the outcome was kept; it is sent again", pk)
            uow.outbox.record_attempts(records)
            for system_pk, (name, at) in answered.items():
                self._reachable(uow, system_pk, name, at)
            renewed = renew is None or uow.outbox.extend(
                renew.id, token, float(renew.timeout_seconds) + LEASE_MARGIN_SECONDS)
            uow.commit()
        return renewed

    def _attempt(self, poster: HttpPoster, item: Claimed) -> "Attempt":
        kind = Notification(item.kind)
        plain = {**item.payload, "message_id": deliveries.message_id(item.event_pk),
                 "sequence": item.event_pk, "occurred_at": item.occurred_at}
        started_at = datetime.now(timezone.utc)
        started = time.perf_counter()
        status, answer = None, b""
        try:
            body = self._envelope(item, kind, plain, started_at)
        except Exception as exc:  # a notification we cannot write: kept FAILED, never lost
            log.error("delivery %d (%s to %s) cannot be prepared: %s", item.id, kind.value, item.system,
                      type(exc).__name__)
            body, outcome, code, message = b"", Outcome.NOT_SENT, None, f"cannot be prepared: {type(exc).__name__}"
        else:
            outcome, code, message, status, answer = self._post(poster, item, kind, body)
        elapsed = time.perf_counter() - started
        count_delivery_attempt(item.system, outcome.value, elapsed)  # /metrics
        duration = Decimal(str(round(elapsed * 1000, 2)))
        return Attempt(kind, started_at, datetime.now(timezone.utc), duration, body, outcome, code, message,
                       status, answer)

    def _envelope(self, item: Claimed, kind: Notification, plain: dict, at: datetime) -> bytes:
        security = None
        if item.username:
            security = security_header(item.username, self._password(item), item.password_type, at)
        return request_body(kind, plain, self.settings.tz, security)

    @staticmethod
    def _post(poster: HttpPoster, item: Claimed, kind: Notification, body: bytes):
        """(outcome, fault code, message, HTTP status, answer) of one POST."""
        try:
            status, answer = poster.post(item.url, body, kind.value, float(item.timeout_seconds))
        except (socket.timeout, TimeoutError):
            return Outcome.TIMEOUT, None, f"no answer within {item.timeout_seconds} s", None, b""
        except (OSError, http.client.HTTPException) as exc:
            return Outcome.CONNECTION_ERROR, None, f"{type(exc).__name__}: {exc}"[:500], None, b""
        outcome, code, message = read_answer(kind, status, answer)
        return outcome, code, message, status, answer

    def _settle(self, uow, item: Claimed, attempt: "Attempt", answered: dict) -> tuple[dict, dict]:
        """One attempt's call record and the delivery's new values, for the caller to keep
        with the others'; the receiver's failure streak counted. Receivers that answered go
        into ``answered``."""
        kind, outcome, now = attempt.kind, attempt.outcome, attempt.finished_at
        record = {
            "at": attempt.started_at, "service": f"{kind.receiver_role.value}_CALLBACK", "caller": item.system,
            "operation": kind.value, "message_id": deliveries.message_id(item.event_pk),
            "application_no": item.application_no, "patient_id": item.patient_id,
            "outcome": "OK" if outcome is Outcome.DELIVERED else "FAULT",
            "fault_code": None if outcome is Outcome.DELIVERED else (attempt.code or outcome.value)[:64],
            "duration_ms": attempt.duration_ms, "replayed": False,
            "remote_addr": (urlsplit(item.url).netloc or "")[:64],
            "request_body": without_credentials(attempt.body) or None, "response_body": attempt.answer or None,
            "direction": "out", "delivery_pk": item.id,
        }
        last = {"last_outcome": outcome.value, "last_http_status": attempt.status,
                "last_fault_code": attempt.code, "last_error": attempt.message}
        if outcome is Outcome.DELIVERED:
            values = {"status": DeliveryStatus.DELIVERED.value, "delivered_at": now, **last}
        elif not outcome.retryable:
            values = {"status": DeliveryStatus.FAILED.value, **last}
            log.warning("delivery %d (%s to %s) refused by the receiver: %s; not retried",
                        item.id, kind.value, item.system, attempt.code or outcome.value)
        elif now >= item.expires_at:
            values = {"status": DeliveryStatus.FAILED.value, **last}
            log.error("delivery %d (%s to %s) given up after %d attempts: %s",
                      item.id, kind.value, item.system, item.attempts + 1, outcome.value)
        else:
            retry_at = self.policy.next_attempt(now, item.attempts + 1, critical=kind.critical)
            values = {"status": DeliveryStatus.RETRYING.value, "next_attempt_at": retry_at, **last}
        if outcome.retryable:
            streak = uow.outbox.receiver_failed(item.system_pk, now, f"{outcome.value}: "
                                                f"{attempt.message or attempt.code or ''}")
            if outcome.receiver_down:
                uow.outbox.hold_receiver(item.system_pk, self.policy.next_attempt(now, streak, critical=kind.critical))
            if streak == 1:
                log.error("receiver %s is failing (%s); deliveries to it are retried with backoff",
                          item.system, outcome.value)
        elif outcome is not Outcome.NOT_SENT:  # it answered: reachable again
            answered[item.system_pk] = (item.system, now)
        return record, values

    def _reachable(self, uow, system_pk: int, name: str, at: datetime) -> None:
        touch = time.monotonic() - self._touched.get(system_pk, 0.0) > TOUCH_SECONDS
        if touch:
            self._touched[system_pk] = time.monotonic()
        recovered = uow.outbox.receiver_succeeded(system_pk, at, touch=touch)
        if recovered is not None:
            failures, since = recovered
            log.warning("receiver %s recovered after %d failed attempts since %s",
                        name, failures, since.isoformat() if since else "?")

    def _password(self, item: Claimed) -> str:
        key = (item.system_pk, item.secret)
        if key not in self._secrets:
            if self.box is None or item.secret is None:
                raise RuntimeError("no secret key to open the callback password")
            self._secrets[key] = self.box.open(item.secret, f"callback:{item.system}")
        return self._secrets[key]


def deliver_forever(settings: Settings, database_url: str, *, threads: int | None = None) -> None:
    Deliverer(settings, database_url, threads=threads).run()

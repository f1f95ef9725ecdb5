"""The call-record spool: records that could not reach the database wait in a local file
and are stored when it answers again, so a call answered while the database was away (or
that succeeded just before it went) still has its record."""

from __future__ import annotations

import base64
import glob
import json
import logging
import os
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine, exists, insert, select

from his_pacs_ws.db.models import CallRecord
from his_pacs_ws.db.repositories import replace_call_record, same_record

log = logging.getLogger(__name__)

# Past this size a worker's spool keeps each record's metadata but drops its bodies.
MAX_SPOOL_BYTES = 256 * 1024 * 1024
REPLAY_BATCH = 500
_BODIES = ("request_body", "response_body")


_STORE = insert(CallRecord)  # replays are rare: the plain Core statement


def _encode(values: dict, with_bodies: bool) -> str:
    plain = {}
    for key, value in values.items():
        if key in _BODIES:
            value = base64.b64encode(value).decode("ascii") if (value is not None and with_bodies) else None
        elif isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        plain[key] = value
    return json.dumps(plain, ensure_ascii=False)


def _decode(line: str) -> dict:
    values = json.loads(line)
    values["at"] = datetime.fromisoformat(values["at"])
    values["duration_ms"] = Decimal(values["duration_ms"])
    for key in _BODIES:
        if values.get(key) is not None:
            values[key] = base64.b64decode(values[key])
    return values


class CallSpool:
    """One file per worker process under ``directory``. Each worker replays its own, and
    the files of workers that are gone (never one that a live worker may append to)."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._pending = None  # unknown until the directory is first looked at
        self._scanned = 0.0
        self.spooled = self.replayed = 0

    def _own_file(self) -> Path:
        return self.directory / f"calls-{os.getpid()}.jsonl"

    def append(self, values: dict) -> None:
        """Keep one record for later. Never raises: a full disk loses the record, loudly."""
        try:
            with self._lock:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                path = self._own_file()
                size = path.stat().st_size if path.exists() else 0
                line = _encode(values, with_bodies=size < MAX_SPOOL_BYTES)
                with open(path, "a", encoding="utf-8") as spool:
                    spool.write(line + "\n")
                    spool.flush()
                    os.fsync(spool.fileno())
                self._pending = True
                self.spooled += 1
        except OSError as exc:
            log.error("call record lost: the spool cannot be written (%s)", type(exc).__name__)

    def pending(self) -> bool:
        """Whether a replay has work; the directory is looked at again every 30 seconds,
        for the files of workers killed since."""
        if self._pending is None or time.monotonic() - self._scanned > 30:
            self._scanned = time.monotonic()
            self._pending = any(self._mine_or_orphaned(path)
                                for path in glob.glob(str(self.directory / "calls-*.jsonl")))
        return self._pending

    def replay(self, engine: Engine) -> int:
        """Store the spooled records of this process and of dead ones; returns how many.
        A file is claimed by renaming it, so two processes never replay the same one; a
        record already stored (a replay cut short after its commit) is not stored twice."""
        stored = 0
        with self._lock:
            self._pending = False
            claimed = []
            for path in sorted(glob.glob(str(self.directory / "calls-*.jsonl"))):
                if not self._mine_or_orphaned(path):
                    continue  # a live worker may be appending to it: it replays its own
                target = f"{path}.replay-{os.getpid()}-{time.monotonic_ns()}"
                try:
                    os.rename(path, target)
                except OSError:
                    continue  # another process took it
                claimed.append(target)
        for index, path in enumerate(claimed):
            try:
                stored += self._replay_file(engine, path)
            except Exception:
                self._pending = True  # the database went again: keep the files for next time
                for left in claimed[index:]:
                    self._give_back(left)
                raise
        self.replayed += stored
        if stored:
            log.warning("stored %d call records kept in the spool while the database was away", stored)
        return stored

    @staticmethod
    def _mine_or_orphaned(path: str) -> bool:
        owner = os.path.basename(path)[len("calls-"):].split(".")[0].split("-")[0]
        if not owner.isdigit() or int(owner) == os.getpid():
            return True
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            return True  # its worker is gone (killed, restarted)
        except PermissionError:
            return False
        return False

    def _replay_file(self, engine: Engine, path: str) -> int:
        with open(path, encoding="utf-8") as spool:
            records = [_decode(line) for line in spool if line.strip()]
        stored = 0
        for start in range(0, len(records), REPLAY_BATCH):
            with engine.begin() as conn:
                for values in records[start:start + REPLAY_BATCH]:
                    if values.get("replaces"):
                        replace_call_record(conn, values)
                        stored += 1
                    elif not conn.scalar(select(exists().where(same_record(values)))):
                        conn.execute(_STORE, values)
                        stored += 1
        os.unlink(path)
        return stored

    def _give_back(self, path: str) -> None:
        try:
            os.rename(path, self.directory / f"calls-{os.getpid()}-{time.monotonic_ns()}.jsonl")
        except OSError:
            pass

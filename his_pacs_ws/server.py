"""Serving with gunicorn sync workers: one process per core beats threads for spyne's
CPU-bound serialization."""

from __future__ import annotations

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication
from gunicorn.workers.sync import SyncWorker

from his_pacs_ws.config import Settings


def write_fault(sock, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn's error page for a request it could not read (bad chunk size, a negative
    Content-Length, chunked plus Content-Length ...), as a SOAP fault envelope instead of
    HTML. The message names the kind of error only: gunicorn's would echo the request."""
    from his_pacs_ws.soap.faults import fault, internal_error
    from his_pacs_ws.soap.protocol import fault_envelope

    if status_int >= 500 and status_int != 501:
        body = fault_envelope(internal_error())
    else:
        body = fault_envelope(fault("BadHttpRequest", f"the HTTP request is malformed ({status_int} {reason})"))
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: text/xml; charset=utf-8\r\nContent-Length: {len(body)}\r\n\r\n")
    gunicorn_util.write_nonblock(sock, head.encode("latin-1") + body)


class SoapSyncWorker(SyncWorker):
    """gunicorn's sync worker whose answers to unreadable HTTP are SOAP faults."""

    def init_process(self):
        gunicorn_util.write_error = write_fault  # this worker process only; its base class calls it
        super().init_process()


class GunicornServer(BaseApplication):
    def __init__(self, settings: Settings, database_url: str):
        self.settings = settings
        self.database_url = database_url
        super().__init__()

    def load_config(self) -> None:
        self.cfg.set("bind", f"{self.settings.host}:{self.settings.port}")
        self.cfg.set("workers", self.settings.workers)
        self.cfg.set("worker_class", "his_pacs_ws.server.SoapSyncWorker")
        self.cfg.set("timeout", 60)
        self.cfg.set("graceful_timeout", 20)
        self.cfg.set("proc_name", "his-pacs-ws")
        self.cfg.set("control_socket_disable", True)  # one per host would clash between instances
        self.cfg.set("loglevel", self.settings.log_level.lower())

    def load(self):
        # Called in each worker after the fork: every worker gets its own engine and pool.
        from his_pacs_ws.soap.app import build_app

        return build_app(self.settings, self.database_url)


def serve(settings: Settings, database_url: str) -> None:
    GunicornServer(settings, database_url).run()

"""Serving with gunicorn sync workers: one process per core beats threads for spyne's
CPU-bound serialization. Beside them run the deliverers of push mode, as child processes
that `serve` restarts if they die and stops when it stops."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading

from gunicorn import util as gunicorn_util
from gunicorn import glogging
from gunicorn.app.base import BaseApplication
from gunicorn.workers.sync import SyncWorker

from his_pacs_ws.config import Settings
from his_pacs_ws.web.metrics import prepare_multiprocess_dir, remove_multiprocess_dir, worker_exited

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


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
        self.cfg.set("worker_class", "his_pacs_ws.server.SoapSyncWorker")
        self.cfg.set("timeout", 60)
        self.cfg.set("graceful_timeout", 20)
        self.cfg.set("proc_name", "his-pacs-ws")
        self.cfg.set("control_socket_disable", True)  # one per host would clash between instances
        self.cfg.set("loglevel", self.settings.log_level.lower())
        self.cfg.set("child_exit", lambda arbiter, worker: worker_exited(worker.pid))  # /metrics
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


def _die_with_parent() -> None:
    """In the child: SIGTERM when `serve` goes away, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


class Deliverers:
    """`serve --deliverers N`: N `his-pacs-ws deliver` processes, kept running."""

    def __init__(self, settings: Settings, database_url: str):
        self.command = [sys.executable, "-m", "his_pacs_ws.cli", "deliver", "--data-dir", str(settings.data_dir)]
        # the URL may hold a password: in the environment, not on a command line `ps` shows
        self.env = {**os.environ, "HIS_PACS_DATABASE_URL": database_url,
                    # serve's flags too: one log format and level for the node's processes
                    "HIS_PACS_LOG_FORMAT": settings.log_format, "HIS_PACS_LOG_LEVEL": settings.log_level}
        self.count = settings.deliverers
        self.processes: list[subprocess.Popen] = []
        self._stopping = threading.Event()

    def start(self) -> None:
        if not self.count:
            return
        self.processes = [self._spawn() for _ in range(self.count)]
        log.info("started %d deliverer%s", self.count, "" if self.count == 1 else "s")
        threading.Thread(target=self._watch, name="deliverers", daemon=True).start()

    def _spawn(self) -> subprocess.Popen:
        return subprocess.Popen(self.command, stdin=subprocess.DEVNULL, env=self.env, preexec_fn=_die_with_parent)

    def _watch(self) -> None:
        while not self._stopping.wait(2.0):
            for i, process in enumerate(self.processes):
                if process.poll() is not None and not self._stopping.is_set():
                    log.warning("deliverer %d exited with status %s; starting another", process.pid,
                                process.returncode)
                    self.processes[i] = self._spawn()

    def stop(self) -> None:
        self._stopping.set()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def serve(settings: Settings, database_url: str) -> None:
    metrics_dir = prepare_multiprocess_dir()  # before the fork: every worker counts into it
    deliverers = Deliverers(settings, database_url)
    deliverers.start()
    try:
        GunicornServer(settings, database_url).run()
    finally:
        deliverers.stop()
        remove_multiprocess_dir(metrics_dir)

"""Serving with gunicorn sync workers: one process per core beats threads for spyne's
CPU-bound serialization."""

from __future__ import annotations

from gunicorn.app.base import BaseApplication

from his_pacs_ws.config import Settings
from his_pacs_ws.web.metrics import prepare_multiprocess_dir, remove_multiprocess_dir, worker_exited


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
        self.cfg.set("child_exit", lambda arbiter, worker: worker_exited(worker.pid))  # /metrics

    def load(self):
        # Called in each worker after the fork: every worker gets its own engine and pool.
        from his_pacs_ws.soap.app import build_app

        return build_app(self.settings, self.database_url)


def serve(settings: Settings, database_url: str) -> None:
    metrics_dir = prepare_multiprocess_dir()  # before the fork: every worker counts into it
    try:
        GunicornServer(settings, database_url).run()
    finally:
        remove_multiprocess_dir(metrics_dir)

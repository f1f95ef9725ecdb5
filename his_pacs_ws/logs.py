"""Logging: one format for the service, gunicorn and the admin commands (text, logfmt or
JSON), times in the hospital's zone with their offset, and an access line per request."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from his_pacs_ws.config import Settings

# Libraries that narrate their start-up at INFO: only their warnings are shown.
CHATTY = ("alembic", "spyne", "setuptools", "pgserver", "gunicorn.error")
STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

access_log = logging.getLogger("his_pacs_ws.access")


def fields(record: logging.LogRecord) -> dict:
    """What a record carries besides its message: the ``extra`` given to the logger."""
    return {k: v for k, v in vars(record).items() if k not in STANDARD and not k.startswith("_")}


class _Formatter(logging.Formatter):
    def __init__(self, tz: ZoneInfo):
        super().__init__()
        self.tz = tz

    def stamp(self, record: logging.LogRecord) -> str:
        return datetime.fromtimestamp(record.created, self.tz).isoformat(timespec="milliseconds")

    def document(self, record: logging.LogRecord) -> dict:
        """The record as named fields, for the structured formats."""
        document = {"time": self.stamp(record), "level": record.levelname.lower(), "logger": record.name,
                    "pid": record.process, "msg": record.getMessage(), **fields(record)}
        if record.exc_info:
            document["exc"] = self.formatException(record.exc_info)
        return document


class TextFormatter(_Formatter):
    def format(self, record):
        extra = " ".join(f"{k}={_logfmt_value(v)}" for k, v in fields(record).items())
        line = f"{self.stamp(record)} {record.process} {record.levelname} {record.name}: {record.getMessage()}"
        line += f" {extra}" if extra else ""
        return line + (("\n" + self.formatException(record.exc_info)) if record.exc_info else "")


class LogfmtFormatter(_Formatter):
    def format(self, record):
        return " ".join(f"{k}={_logfmt_value(v)}" for k, v in self.document(record).items())


class JsonFormatter(_Formatter):
    def format(self, record):
        return json.dumps(self.document(record), ensure_ascii=False, default=str)


def _logfmt_value(value) -> str:
    text = "" if value is None else str(value)
    if text and not any(ch in text for ch in ' "=\\\n\t'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


FORMATTERS = {"text": TextFormatter, "logfmt": LogfmtFormatter, "json": JsonFormatter}


def configure(settings: Settings, *, stream=None) -> None:
    """Route every logger, gunicorn's included, through one handler on standard error."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(FORMATTERS[settings.log_format](settings.tz))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    if settings.log_level != "DEBUG":
        for name in CHATTY:
            logging.getLogger(name).setLevel(logging.WARNING)
    logging.captureWarnings(True)


class AccessLog:
    """WSGI middleware: one line per HTTP request, with the client's address (and the
    address a proxy says it forwarded for), method, path, status, size and duration. The
    query string is left out: it is ?wsdl or nothing a partner needs logged."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):  # the wrapped application's attributes (runtime, ...)
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        seen = {}

        def recording_start_response(status, headers, exc_info=None):
            seen["status"] = status.split(" ", 1)[0]
            return start_response(status, headers, exc_info)

        chunks = []
        try:
            result = self.app(environ, recording_start_response)
            try:
                chunks = list(result)  # the dispatcher's answers are small lists already
            finally:
                if hasattr(result, "close"):
                    result.close()
            return chunks
        finally:
            status = seen.get("status", "-")
            access_log.info(
                "%s %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status,
                extra={"client": environ.get("REMOTE_ADDR") or "-",
                       "forwarded_for": environ.get("HTTP_X_FORWARDED_FOR") or "-",
                       "status": status, "bytes": sum(len(c) for c in chunks),
                       "ms": round((time.perf_counter() - started) * 1000, 1)},
            )

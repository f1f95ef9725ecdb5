"""Settings, read once from the environment (and CLI flags) and passed in explicitly."""

from __future__ import annotations

import base64
import os
import sys
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from his_pacs_ws.domain.billing import ChargePoint
from his_pacs_ws.domain.notifications import RetryPolicy

ENV_PREFIX = "HIS_PACS_"
KNOWN = {
    "DATABASE_URL", "DATA_DIR", "HOST", "PORT", "WORKERS", "TIMEZONE", "CHARGE_POINT",
    "CHARGE_POINT_BY_DEPARTMENT", "CRITICAL_ACK_MINUTES", "MAX_REQUEST_BYTES", "LOG_LEVEL", "AUTH",
    "SECRET_KEY", "TOKEN_WINDOW_SECONDS", "PUBLIC_URL", "INBOX", "INBOX_SWEEP_SECONDS", "VIEWS_LISTEN",
    "DELIVERERS", "DELIVERY_THREADS", "DELIVERY_MAX_AGE_SECONDS", "DELIVERY_BACKOFF_SECONDS",
    "DELIVERY_BACKOFF_CAP_SECONDS", "CRITICAL_BACKOFF_CAP_SECONDS",
    # read by the QA scripts and the tests, not by the service
    "HIS_USER", "HIS_PASSWORD", "PACS_USER", "PACS_PASSWORD", "TEST_DATABASE_URL", "URL",
}


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def parse_charge_point(value: str, setting: str) -> ChargePoint:
    try:
        return ChargePoint(value.strip().upper())
    except ValueError:
        choices = ", ".join(cp.value for cp in ChargePoint)
        raise ConfigError(f"{setting}: {value!r} is not one of {choices}") from None


def parse_department_charge_points(value: str) -> dict[str, ChargePoint]:
    """Parse ``MR=PACS_REGISTER,US=NURSE_SEND`` into a department -> charge point map."""
    result: dict[str, ChargePoint] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        department, sep, point = part.partition("=")
        if not sep or not department.strip():
            raise ConfigError(
                f"HIS_PACS_CHARGE_POINT_BY_DEPARTMENT: {part!r} is not DEPARTMENT=CHARGE_POINT"
            )
        result[department.strip()] = parse_charge_point(
            point, "HIS_PACS_CHARGE_POINT_BY_DEPARTMENT"
        )
    return result


def parse_switch(value: str | None, setting: str, *, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in ("on", "true", "1", "yes"):
        return True
    if lowered in ("off", "false", "0", "no"):
        return False
    raise ConfigError(f"{setting}: {value!r} is not on or off")


def parse_listen(value: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:5433`` for IPv6; ``*`` or ``0.0.0.0`` for every address)."""
    host, sep, port = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"HIS_PACS_VIEWS_LISTEN: {value!r} is not HOST:PORT, e.g. 127.0.0.1:5433")
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path("var")
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    timezone: str = "Asia/Shanghai"
    charge_point: ChargePoint = ChargePoint.NURSE_SEND
    charge_point_by_department: dict[str, ChargePoint] = field(default_factory=dict)
    critical_ack_minutes: int = 10
    max_request_bytes: int = 1024 * 1024
    log_level: str = "INFO"
    auth: bool = True  # WS-Security; off only for a local demo, and loudly
    public_url: str | None = None  # the address the WSDL announces, e.g. behind a TLS proxy
    secret_key: str | None = None
    token_window_seconds: int = 300
    inbox: bool = True  # serve starts the PACS inbox processor (view mode)
    inbox_sweep_seconds: int = 10
    views_listen: str | None = None  # host:port where the embedded PostgreSQL also listens on TCP
    # push mode: deliverer processes `serve` starts, and how failed deliveries are retried
    deliverers: int = 1
    delivery_threads: int = 4
    delivery_max_age_seconds: int = 24 * 3600
    delivery_backoff_seconds: float = 1.0
    delivery_backoff_cap_seconds: float = 600.0
    critical_backoff_cap_seconds: float = 30.0

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            base_seconds=self.delivery_backoff_seconds, cap_seconds=self.delivery_backoff_cap_seconds,
            critical_cap_seconds=self.critical_backoff_cap_seconds,
            max_age=timedelta(seconds=self.delivery_max_age_seconds),
        )

    def charge_point_for(self, executing_department_code: str) -> ChargePoint:
        return self.charge_point_by_department.get(executing_department_code, self.charge_point)

    def with_overrides(self, **overrides) -> "Settings":
        """A copy with the given non-None values replaced (CLI flags win over the environment)."""
        settings = replace(self, **{k: v for k, v in overrides.items() if v is not None})
        settings.validate()
        return settings

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(ENV_PREFIX + name)
            return value if value not in (None, "") else None

        def get_int(name: str, default: int) -> int:
            raw = get(name)
            if raw is None:
                return default
            try:
                return int(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name}: {raw!r} is not a whole number") from None

        def get_seconds(name: str, default: float) -> float:
            raw = get(name)
            if raw is None:
                return default
            try:
                return float(raw)
            except ValueError:
                raise ConfigError(f"{ENV_PREFIX}{name}: {raw!r} is not a number of seconds") from None

        settings = cls(
            database_url=get("DATABASE_URL"),
            data_dir=Path(get("DATA_DIR") or "var"),
            host=get("HOST") or cls.host,
            port=get_int("PORT", cls.port),
            workers=get_int("WORKERS", cls.workers),
            timezone=get("TIMEZONE") or cls.timezone,
            charge_point=parse_charge_point(get("CHARGE_POINT") or "NURSE_SEND", "HIS_PACS_CHARGE_POINT"),
            charge_point_by_department=parse_department_charge_points(
                get("CHARGE_POINT_BY_DEPARTMENT") or ""
            ),
            critical_ack_minutes=get_int("CRITICAL_ACK_MINUTES", cls.critical_ack_minutes),
            max_request_bytes=get_int("MAX_REQUEST_BYTES", cls.max_request_bytes),
            log_level=(get("LOG_LEVEL") or cls.log_level).upper(),
            auth=parse_switch(get("AUTH"), "HIS_PACS_AUTH", default=True),
            secret_key=get("SECRET_KEY"),
            public_url=(get("PUBLIC_URL") or "").rstrip("/") or None,
            token_window_seconds=get_int("TOKEN_WINDOW_SECONDS", cls.token_window_seconds),
            inbox=parse_switch(get("INBOX"), "HIS_PACS_INBOX", default=True),
            inbox_sweep_seconds=get_int("INBOX_SWEEP_SECONDS", cls.inbox_sweep_seconds),
            views_listen=get("VIEWS_LISTEN"),
            deliverers=get_int("DELIVERERS", cls.deliverers),
            delivery_threads=get_int("DELIVERY_THREADS", cls.delivery_threads),
            delivery_max_age_seconds=get_int("DELIVERY_MAX_AGE_SECONDS", cls.delivery_max_age_seconds),
            delivery_backoff_seconds=get_seconds("DELIVERY_BACKOFF_SECONDS", cls.delivery_backoff_seconds),
            delivery_backoff_cap_seconds=get_seconds("DELIVERY_BACKOFF_CAP_SECONDS",
                                                     cls.delivery_backoff_cap_seconds),
            critical_backoff_cap_seconds=get_seconds("CRITICAL_BACKOFF_CAP_SECONDS",
                                                     cls.critical_backoff_cap_seconds),
        )
        settings.validate()
        unknown = sorted(k for k in env if k.startswith(ENV_PREFIX) and k[len(ENV_PREFIX):] not in KNOWN)
        if unknown:
            print(f"his-pacs-ws: ignoring unknown settings: {', '.join(unknown)}", file=sys.stderr)
        return settings

    def validate(self) -> None:
        try:
            self.tz  # noqa: B018  (the property raises for an unknown zone)
        except Exception:
            raise ConfigError(f"HIS_PACS_TIMEZONE: unknown time zone {self.timezone!r}") from None
        if self.critical_ack_minutes <= 0:
            raise ConfigError("HIS_PACS_CRITICAL_ACK_MINUTES must be positive")
        if self.max_request_bytes < 1024:
            raise ConfigError("HIS_PACS_MAX_REQUEST_BYTES must be at least 1024")
        if self.workers < 1:
            raise ConfigError("HIS_PACS_WORKERS must be at least 1")
        if self.deliverers < 0:
            raise ConfigError("HIS_PACS_DELIVERERS must be 0 or more")
        if not 1 <= self.delivery_threads <= 64:
            raise ConfigError("HIS_PACS_DELIVERY_THREADS must be between 1 and 64")
        if self.delivery_max_age_seconds < 1:
            raise ConfigError("HIS_PACS_DELIVERY_MAX_AGE_SECONDS must be positive")
        if not 0 < self.delivery_backoff_seconds <= self.delivery_backoff_cap_seconds:
            raise ConfigError("HIS_PACS_DELIVERY_BACKOFF_SECONDS must be positive and at most the cap")
        if self.critical_backoff_cap_seconds <= 0:
            raise ConfigError("HIS_PACS_CRITICAL_BACKOFF_CAP_SECONDS must be positive")
        if self.token_window_seconds < 1:
            raise ConfigError("HIS_PACS_TOKEN_WINDOW_SECONDS must be positive")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ConfigError(f"HIS_PACS_LOG_LEVEL: {self.log_level!r} is not DEBUG, INFO, WARNING or ERROR")
        if self.public_url and not self.public_url.startswith(("http://", "https://")):
            raise ConfigError("HIS_PACS_PUBLIC_URL must start with http:// or https://")
        if self.inbox_sweep_seconds < 1:
            raise ConfigError("HIS_PACS_INBOX_SWEEP_SECONDS must be at least 1")
        if self.views_listen is not None:
            parse_listen(self.views_listen)
            if self.database_url:
                raise ConfigError("HIS_PACS_VIEWS_LISTEN applies to the embedded PostgreSQL only; "
                                  "a server's own settings say where it listens")
        if self.secret_key:
            try:
                key = base64.b64decode(self.secret_key, validate=True)
            except ValueError:
                key = b""
            if len(key) != 32:
                raise ConfigError("HIS_PACS_SECRET_KEY must be the base64 of 32 bytes")

"""Who is calling: WS-Security UsernameToken checked against the partner systems.

A system's row is cached for a short time so that a call costs no key derivation and
usually no lookup; nonces go to PostgreSQL, shared by every worker, so a token is
accepted once whichever worker it reaches.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from his_pacs_ws.domain.access import Caller, Role, check_role
from his_pacs_ws.domain.errors import AuthenticationFailed
from his_pacs_ws.domain.usernametoken import (
    Token,
    TokenRefused,
    check_fresh,
    check_password,
)
from his_pacs_ws.services.context import Context
from his_pacs_ws.services.secrets import SecretBox

log = logging.getLogger(__name__)

CACHE_SECONDS = 30
CACHE_ENTRIES = 10_000
PRUNE_EVERY_SECONDS = 60
REFUSAL = "authentication failed"


@dataclass(frozen=True)
class _Known:
    caller: Caller
    secret: str
    enabled: bool


class Authenticator:
    def __init__(self, context: Context, box: SecretBox):
        self.context = context
        self.box = box
        self.window = timedelta(seconds=context.settings.token_window_seconds)
        # A token is fresh while Created is within the window on either side of the clock,
        # so for up to twice the window: its nonce must be remembered at least that long.
        self.nonce_keep = 2 * self.window + timedelta(minutes=1)
        self._cache: dict[str, tuple[float, _Known | None]] = {}
        self._last_prune = 0.0

    def authenticate(self, token: Token | None, service: Role) -> Caller:
        """The calling system, or AuthenticationFailed (one message for every reason) or
        AccessDenied (a system of the other role)."""
        now = datetime.now(timezone.utc)
        if token is None:
            return self._refuse(None, "no UsernameToken", now)
        known = self._lookup(token.username)
        try:
            if known is None or not known.enabled:
                raise TokenRefused("unknown or disabled system")
            check_fresh(token, now, self.window)
            check_password(token, known.secret)
        except TokenRefused as why:
            return self._refuse(token.username if known else None, str(why), now, claimed=token.username)
        if token.nonce is not None and not self._first_use(known.caller.name, token.nonce, now):
            return self._refuse(known.caller.name, "nonce already used", now)
        check_role(known.caller, service)
        return known.caller

    def _lookup(self, name: str) -> _Known | None:
        """The system, from the cache if looked up lately. Unknown names are cached too, so
        a caller spraying names costs no query each; the cache is bounded."""
        now = time.monotonic()
        if name in self._cache and now - self._cache[name][0] < CACHE_SECONDS:
            return self._cache[name][1]
        with self.context.uow().reading() as uow:
            row = uow.systems.get(name)
            known = None
            if row is not None:
                departments = frozenset(row.departments) if row.departments is not None else None
                known = _Known(Caller(row.name, Role(row.role), departments), self.box.open(row.secret, row.name),
                               row.enabled)
        if len(self._cache) >= CACHE_ENTRIES:
            self._cache.clear()
        self._cache[name] = (now, known)
        return known

    def _first_use(self, system: str, nonce: bytes, now: datetime) -> bool:
        with self.context.uow() as uow:
            fresh = uow.systems.use_nonce(system, base64.b64encode(nonce).decode("ascii")[:128], now)
            if time.monotonic() - self._last_prune > PRUNE_EVERY_SECONDS:
                uow.systems.prune_nonces(now - self.nonce_keep)
                self._last_prune = time.monotonic()
            uow.commit()
        return fresh

    def _refuse(self, system: str | None, why: str, now: datetime, claimed: str | None = None):
        log.warning("authentication failed (%s) for %r", why, (claimed or system or "")[:64])
        if system is not None:
            with self.context.uow() as uow:
                uow.systems.count_failure(system, now)
                uow.commit()
        raise AuthenticationFailed(REFUSAL)

"""Console operators: accounts (from the command line), sign-in with a rate limit, sessions
with an idle and an absolute expiry, and the audit of sign-ins and admin actions."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain.access import OperatorRole
from his_pacs_ws.domain.passwords import DUMMY_HASH, MIN_LENGTH, hash_password, verify_password

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
ROLES = tuple(role.value for role in OperatorRole)
IDLE = timedelta(minutes=30)  # a session unused this long is over
ABSOLUTE = timedelta(hours=12)  # and none lasts longer than a shift
SEEN_EVERY = timedelta(minutes=1)  # how often a request writes the session's last use
# Sign-in is refused (without checking the password) after this many failures in the window:
# per name, against guessing one account; per address, against spraying many.
WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20


class OperatorCommandError(ValueError):
    """A refused operator command, with a message for the person running it."""


class SignInRefused(Exception):
    """Wrong name or password (one message for both), or too many recent failures."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason  # 'invalid' | 'locked'


@dataclass(frozen=True)
class SignedIn:
    name: str
    role: str
    token: str  # goes to the browser as the session cookie; only its digest is stored
    csrf_token: str


@dataclass(frozen=True)
class OperatorSession:
    name: str
    role: str
    csrf_token: str

    @property
    def is_admin(self) -> bool:
        return self.role == OperatorRole.ADMIN.value


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _clip(text: str | None, limit: int = 64) -> str | None:
    if text is None:
        return None
    return "".join(ch for ch in text if ch.isprintable())[:limit]


def add_operator(uow: UnitOfWork, name: str, role: str, password: str) -> None:
    if not NAME.match(name):
        raise OperatorCommandError("an operator name is 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise OperatorCommandError("an operator's role is viewer or admin")
    _check_password(password)
    with uow:
        if uow.operators.add(name=name, role=role, password_hash=hash_password(password), enabled=True) is None:
            raise OperatorCommandError(f"operator {name} exists already")
        uow.operators.audit(at=_now(), operator_name=None, action="OPERATOR_ADD", target=name, outcome="OK",
                            remote_addr=None, detail=f"role {role}, from the command line")
        uow.commit()


def set_password(uow: UnitOfWork, name: str, password: str) -> None:
    """A new password; the operator's open sessions end."""
    _check_password(password)
    with uow:
        operator = _get(uow, name)
        operator.password_hash = hash_password(password)
        uow.operators.touch(operator)
        uow.operators.drop_sessions_of(operator.id)
        uow.operators.audit(at=_now(), operator_name=None, action="OPERATOR_PASSWORD", target=name, outcome="OK",
                            remote_addr=None, detail="from the command line")
        uow.commit()


def set_enabled(uow: UnitOfWork, name: str, enabled: bool) -> None:
    with uow:
        operator = _get(uow, name)
        operator.enabled = enabled
        uow.operators.touch(operator)
        if not enabled:
            uow.operators.drop_sessions_of(operator.id)
        uow.operators.audit(at=_now(), operator_name=None, action="OPERATOR_ENABLE" if enabled else "OPERATOR_DISABLE",
                            target=name, outcome="OK", remote_addr=None, detail="from the command line")
        uow.commit()


def list_operators(uow: UnitOfWork) -> list[dict]:
    with uow:
        return [{"name": o.name, "role": o.role, "enabled": o.enabled, "last_sign_in_at": o.last_sign_in_at,
                 "created_at": o.created_at} for o in uow.operators.all()]


def _check_password(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise OperatorCommandError(f"the password needs at least {MIN_LENGTH} characters")


def _get(uow: UnitOfWork, name: str):
    operator = uow.operators.get(name)
    if operator is None:
        raise OperatorCommandError(f"no operator named {name}")
    return operator


def sign_in(uow: UnitOfWork, name: str, password: str, remote_addr: str | None,
            replaces: str | None = None) -> SignedIn:
    """A new session for a correct name and password. The session the browser had before
    (``replaces``), if any, ends: a session id is never carried across a sign-in."""
    at, name, remote_addr = _now(), _clip(name) or "", _clip(remote_addr)
    with uow:
        if replaces:
            uow.operators.drop_session(_digest(replaces))
        locked = (uow.operators.failures_since(at - WINDOW, operator_name=name) >= MAX_FAILURES_PER_NAME
                  or (remote_addr is not None and uow.operators.failures_since(
                      at - WINDOW, remote_addr=remote_addr) >= MAX_FAILURES_PER_ADDRESS))
        if locked:
            uow.operators.audit(at=at, operator_name=name, action="SIGN_IN", target=None, outcome="LOCKED",
                                remote_addr=remote_addr, detail="too many failed sign-ins lately")
            uow.commit()
            raise SignInRefused("locked")
        operator = uow.operators.get(name)
        ok = verify_password(password, operator.password_hash if operator else DUMMY_HASH)
        if not (ok and operator is not None and operator.enabled):
            why = "unknown name" if operator is None else "wrong password" if not ok else "the account is disabled"
            uow.operators.audit(at=at, operator_name=name, action="SIGN_IN", target=None, outcome="FAILED",
                                remote_addr=remote_addr, detail=why)
            uow.commit()
            raise SignInRefused("invalid")
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        uow.operators.prune_sessions(at)
        uow.operators.add_session(token_hash=_digest(token), operator_pk=operator.id, csrf_token=csrf,
                                  remote_addr=remote_addr, created_at=at, last_seen_at=at, expires_at=at + IDLE)
        operator.last_sign_in_at = at
        uow.operators.audit(at=at, operator_name=name, action="SIGN_IN", target=None, outcome="OK",
                            remote_addr=remote_addr, detail=None)
        uow.commit()
        return SignedIn(operator.name, operator.role, token, csrf)


def session_for(uow: UnitOfWork, token: str | None) -> OperatorSession | None:
    """The signed-in operator of this session token, or None (unknown, expired, disabled).
    Each use pushes the idle expiry out, never past the absolute one."""
    if not token or len(token) > 128:
        return None
    at = _now()
    with uow:
        found = uow.operators.session_by_token(_digest(token))
        if found is None:
            return None
        session, operator = found
        if session.expires_at <= at or not operator.enabled:
            uow.operators.drop_session(session.token_hash)
            uow.commit()
            return None
        if at - session.last_seen_at >= SEEN_EVERY:
            uow.operators.seen(session.id, at, min(at + IDLE, session.created_at + ABSOLUTE))
            uow.commit()
        return OperatorSession(operator.name, operator.role, session.csrf_token)


def sign_out(uow: UnitOfWork, token: str, operator: OperatorSession, remote_addr: str | None) -> None:
    with uow:
        uow.operators.drop_session(_digest(token))
        uow.operators.audit(at=_now(), operator_name=operator.name, action="SIGN_OUT", target=None, outcome="OK",
                            remote_addr=_clip(remote_addr), detail=None)
        uow.commit()


def audit(uow: UnitOfWork, operator: OperatorSession, action: str, target: str | None, outcome: str,
          remote_addr: str | None, detail: str | None = None) -> None:
    """One line of the audit, in its own transaction: a refused or failed action is kept too."""
    with uow:
        uow.operators.audit(at=_now(), operator_name=operator.name, action=action, target=_clip(target, 200),
                            outcome=outcome, remote_addr=_clip(remote_addr), detail=detail)
        uow.commit()


def audit_log(uow: UnitOfWork, *, since: datetime | None = None, operator_name: str | None = None,
              limit: int = 200) -> list[dict]:
    with uow:
        return [{"at": a.at, "operator": a.operator_name, "action": a.action, "target": a.target,
                 "outcome": a.outcome, "remote_addr": a.remote_addr, "detail": a.detail}
                for a in uow.operators.audit_log(since=since, operator_name=operator_name, limit=limit)]

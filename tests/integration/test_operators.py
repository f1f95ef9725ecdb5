"""Console operators on the real PostgreSQL: slow hashes, sessions that end, a sign-in that
cannot be guessed at speed, and an audit of every attempt."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.services import operators
from his_pacs_ws.services.operators import MAX_FAILURES_PER_NAME, OperatorCommandError, SignInRefused

PASSWORD = "console-password-1"


@pytest.fixture
def uow(sessions):
    return lambda: UnitOfWork(sessions)


def new_operator(uow, role="viewer") -> str:
    name = f"op-{uuid.uuid4().hex[:8]}"
    operators.add_operator(uow(), name, role, PASSWORD)
    return name


def audit_of(engine, name):
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT action, outcome FROM operator_audit WHERE operator_name = :n ORDER BY id"), {"n": name})]


def test_the_password_is_stored_as_a_salted_scrypt_hash(uow, engine):
    name = new_operator(uow)
    other = new_operator(uow)
    with engine.connect() as conn:
        hashes = dict(conn.execute(text("SELECT name, password_hash FROM operators WHERE name IN (:a, :b)"),
                                   {"a": name, "b": other}).all())
    assert hashes[name].startswith("scrypt$32768$8$1$") and PASSWORD not in hashes[name]
    assert hashes[name] != hashes[other]  # the same password, two salts


def test_short_passwords_unknown_roles_and_duplicates_are_refused(uow):
    with pytest.raises(OperatorCommandError, match="12 characters"):
        operators.add_operator(uow(), "shorty", "viewer", "short")
    with pytest.raises(OperatorCommandError, match="viewer or admin"):
        operators.add_operator(uow(), "rooty", "root", PASSWORD)
    name = new_operator(uow)
    with pytest.raises(OperatorCommandError, match="exists"):
        operators.add_operator(uow(), name, "admin", PASSWORD)


def test_sign_in_gives_a_session_that_sign_out_ends(uow, engine):
    name = new_operator(uow, "admin")
    signed = operators.sign_in(uow(), name, PASSWORD, "127.0.0.1")
    session = operators.session_for(uow(), signed.token)
    assert (session.name, session.role, session.is_admin) == (name, "admin", True)
    with engine.connect() as conn:  # only the digest is kept
        assert conn.scalar(text("SELECT count(*) FROM operator_sessions WHERE token_hash = :t"),
                           {"t": signed.token}) == 0
    operators.sign_out(uow(), signed.token, session, "127.0.0.1")
    assert operators.session_for(uow(), signed.token) is None
    assert audit_of(engine, name) == [("SIGN_IN", "OK"), ("SIGN_OUT", "OK")]


def test_wrong_password_and_unknown_name_get_the_same_refusal(uow, engine):
    name = new_operator(uow)
    for who, password in ((name, "not-the-password"), (f"nobody-{uuid.uuid4().hex[:6]}", PASSWORD)):
        with pytest.raises(SignInRefused) as refused:
            operators.sign_in(uow(), who, password, "10.9.8.7")
        assert refused.value.reason == "invalid"
    assert audit_of(engine, name) == [("SIGN_IN", "FAILED")]


def test_after_five_failures_even_the_right_password_is_refused_for_a_while(uow, engine):
    name = new_operator(uow)
    for _ in range(MAX_FAILURES_PER_NAME):
        with pytest.raises(SignInRefused):
            operators.sign_in(uow(), name, "guess-guess-guess", "10.1.1.1")
    with pytest.raises(SignInRefused) as refused:
        operators.sign_in(uow(), name, PASSWORD, "10.1.1.2")
    assert refused.value.reason == "locked"
    assert audit_of(engine, name)[-1] == ("SIGN_IN", "LOCKED")
    with engine.begin() as conn:  # the failures age out of the window
        conn.execute(text("UPDATE operator_audit SET at = at - interval '16 minutes' WHERE operator_name = :n"),
                     {"n": name})
    assert operators.sign_in(uow(), name, PASSWORD, "10.1.1.2").name == name


def test_one_address_spraying_names_is_stopped(uow, engine):
    address = f"10.77.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    for i in range(operators.MAX_FAILURES_PER_ADDRESS):
        with pytest.raises(SignInRefused):
            operators.sign_in(uow(), f"spray-{i}", "guess-guess-guess", address)
    name = new_operator(uow)
    with pytest.raises(SignInRefused) as refused:
        operators.sign_in(uow(), name, PASSWORD, address)
    assert refused.value.reason == "locked"
    assert operators.sign_in(uow(), name, PASSWORD, "10.2.2.2").name == name  # from elsewhere it works


def test_a_session_ends_when_idle_and_after_a_shift_whatever_its_use(uow, engine):
    name = new_operator(uow)
    idle = operators.sign_in(uow(), name, PASSWORD, None)
    shift = operators.sign_in(uow(), name, PASSWORD, None)
    with engine.begin() as conn:
        conn.execute(text("UPDATE operator_sessions SET expires_at = now() - interval '1 second' "
                          "WHERE token_hash = encode(sha256(convert_to(:t, 'UTF8')), 'hex')"), {"t": idle.token})
        # used a minute ago but signed in 12 hours ago: the next use may not extend it
        conn.execute(text("UPDATE operator_sessions SET created_at = now() - interval '12 hours', "
                          "last_seen_at = now() - interval '2 minutes', expires_at = now() + interval '1 second' "
                          "WHERE token_hash = encode(sha256(convert_to(:t, 'UTF8')), 'hex')"), {"t": shift.token})
    assert operators.session_for(uow(), idle.token) is None
    assert operators.session_for(uow(), shift.token) is not None  # the last second of it
    with engine.connect() as conn:
        expires = conn.scalar(text("SELECT expires_at FROM operator_sessions WHERE token_hash = "
                                   "encode(sha256(convert_to(:t, 'UTF8')), 'hex')"), {"t": shift.token})
    assert expires <= datetime.now(timezone.utc) + timedelta(seconds=1)


def test_signing_in_ends_the_session_the_browser_came_with(uow):
    planted = operators.sign_in(uow(), new_operator(uow), PASSWORD, None)  # e.g. an attacker's own
    victim = new_operator(uow)
    signed = operators.sign_in(uow(), victim, PASSWORD, None, replaces=planted.token)
    assert signed.token != planted.token
    assert operators.session_for(uow(), planted.token) is None
    assert operators.session_for(uow(), signed.token).name == victim


def test_disabling_or_a_new_password_ends_every_session(uow, engine):
    name = new_operator(uow)
    first = operators.sign_in(uow(), name, PASSWORD, None)
    operators.set_password(uow(), name, "a-brand-new-password")
    assert operators.session_for(uow(), first.token) is None
    second = operators.sign_in(uow(), name, "a-brand-new-password", None)
    operators.set_enabled(uow(), name, False)
    assert operators.session_for(uow(), second.token) is None
    with pytest.raises(SignInRefused):
        operators.sign_in(uow(), name, "a-brand-new-password", None)

"""The outbox: a committed change always has its notification, a fault or a replay none;
events of one application keep their order; fan-out follows each receiver's subscription."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from his_pacs_ws.domain.errors import AmountMismatch, ApplicationLocked
from his_pacs_ws.services import deliveries
from tests.integration.conftest import item, unique


def events(sessions, application_no: str) -> list[tuple[int, str, str | None]]:
    with sessions() as session:
        return [tuple(row) for row in session.execute(
            text("SELECT id, kind, origin FROM outbox_events WHERE application_no = :no ORDER BY id"),
            {"no": application_no})]


def kinds(sessions, application_no: str) -> list[str]:
    return [kind for _, kind, _ in events(sessions, application_no)]


def test_submitting_tells_nobody_yet(hospital, sessions):
    assert kinds(sessions, hospital.submit()) == []


def test_payment_releases_to_pacs_and_tells_the_his(hospital, sessions):
    number = hospital.released()
    assert kinds(sessions, number) == ["ChargesPosted", "ApplicationStatusChanged", "ApplicationReleased"]
    assert {origin for _, _, origin in events(sessions, number)} == {"HIS"}


def test_a_fault_writes_no_notification(hospital, sessions):
    number = hospital.submit()
    with pytest.raises(AmountMismatch):
        hospital.pay(number, amount="149.99")
    assert kinds(sessions, number) == []
    hospital.pay(number)
    hospital.pacs(number, "REGISTERED")
    before = kinds(sessions, number)
    with pytest.raises(ApplicationLocked):
        hospital.cancel(number)
    assert kinds(sessions, number) == before


def test_a_replayed_message_id_writes_no_second_notification(hospital, sessions):
    number = hospital.submit()
    hospital.pay(number, message_id="M-replay-" + number)
    once = kinds(sessions, number)
    hospital.pay(number, message_id="M-replay-" + number)
    assert kinds(sessions, number) == once


def test_a_stale_event_tells_nobody(hospital, sessions):
    number = hospital.released()
    hospital.pacs(number, "EXAMINED", minutes=30)
    before = kinds(sessions, number)
    hospital.pacs(number, "REGISTERED", minutes=20)  # arrives late: recorded, not applied
    assert kinds(sessions, number) == before


def test_charges_at_registration_and_their_reversal_are_posted(register_charging, sessions):
    number = register_charging.submit(patient_type="INPATIENT", executing="MR", items=[item(modality="MR")])
    register_charging.send(number)
    assert "ChargesPosted" not in kinds(sessions, number)  # PACS_REGISTER: nothing charged at the send
    register_charging.pacs(number, "REGISTERED")
    register_charging.pacs(number, "REGISTRATION_CANCELLED", minutes=25)
    with sessions() as session:
        posted = [row[0] for row in session.execute(text(
            "SELECT payload FROM outbox_events WHERE application_no = :no AND kind = 'ChargesPosted' ORDER BY id"),
            {"no": number})]
    charged, reversed_ = posted
    assert charged["charges"][0]["trigger"] == "PACS_REGISTER" and charged["total_charged"] == "150.00"
    assert reversed_["refunds"][0]["source"] == "REGISTRATION_CANCELLED"
    assert reversed_["total_refunded"] == "150.00"


def test_the_critical_value_loop_notifies_each_side(hospital, sessions):
    number = hospital.released()
    cv = hospital.raise_cv(number)["critical_value"]["critical_value_no"]
    hospital.acknowledge(cv)
    hospital.handle(cv)
    assert kinds(sessions, number)[-3:] == ["CriticalValueRaised", "CriticalValueUpdated", "CriticalValueUpdated"]


def test_overdue_values_are_escalated_once(hospital, sessions):
    from his_pacs_ws.config import Settings
    from his_pacs_ws.db.engine import UnitOfWork
    from his_pacs_ws.services.critical_values import notify_overdue

    number = hospital.released()
    hospital.raise_cv(number, minutes=-60 * 24 * 365)  # reported long ago, never received
    counted = [notify_overdue(UnitOfWork(sessions), Settings()) for _ in range(2)]
    assert counted[0] >= 1 and counted[1] == 0
    assert kinds(sessions, number).count("CriticalValueOverdue") == 1


def test_events_of_one_application_follow_its_changes(hospital, sessions):
    """Racing refunds of one application: ids (the Sequence) follow the commit order."""
    number = hospital.submit(patient_type="INPATIENT", items=[item(quantity="4", price="10.00")])
    hospital.send(number)
    charge_id = hospital.get(number)["charges"][0]["charge_id"]
    threads = [threading.Thread(target=hospital.refund, args=(number, [(charge_id, "1")])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with sessions() as session:
        refunded = [Decimal(p["charges"][0]["refunded_quantity"]) for (p,) in session.execute(text(
            "SELECT payload FROM outbox_events WHERE application_no = :no AND kind = 'ChargesPosted' "
            "AND origin = 'PACS' ORDER BY id"), {"no": number})]
    assert refunded == [Decimal(n) for n in ("1.000", "2.000", "3.000", "4.000")]


def test_fan_out_follows_role_departments_events_and_origin(hospital, sessions):
    from his_pacs_ws.db.engine import UnitOfWork
    from his_pacs_ws.services.secrets import SecretBox
    from his_pacs_ws.services.systems import add_system

    box = SecretBox(b"k" * 32)
    names = {key: unique(key) for key in ("his", "pacs_ct", "pacs_mr", "his_reports")}
    add_system(UnitOfWork(sessions), box, names["his"], "HIS", "password-12345", None)
    add_system(UnitOfWork(sessions), box, names["his_reports"], "HIS", "password-12345", None)
    add_system(UnitOfWork(sessions), box, names["pacs_ct"], "PACS", "password-12345", ["CT"])
    add_system(UnitOfWork(sessions), box, names["pacs_mr"], "PACS", "password-12345", ["MR"])
    for key, name in names.items():
        deliveries.set_callback(UnitOfWork(sessions), box, name, url="http://127.0.0.1:9/", password=None,
                                events="ReportPublished" if key == "his_reports" else None, username=None,
                                password_type="digest", timeout_seconds=1)
    number = hospital.released(executing="CT")
    while deliveries.fan_out(UnitOfWork(sessions), timedelta(hours=1)):
        pass
    with sessions() as session:
        got = {(system, kind) for system, kind in session.execute(text(
            "SELECT s.name, e.kind FROM deliveries d JOIN systems s ON s.id = d.system_pk "
            "JOIN outbox_events e ON e.id = d.event_pk WHERE d.application_no = :no"), {"no": number})}
        # these systems' passwords use a key of this test's: the SOAP tier's server would refuse them
        for statement in ("DELETE FROM deliveries WHERE system_pk IN (SELECT id FROM systems WHERE name = ANY(:n))",
                          "DELETE FROM callback_endpoints WHERE system_pk IN "
                          "(SELECT id FROM systems WHERE name = ANY(:n))",
                          "DELETE FROM systems WHERE name = ANY(:n)"):
            session.execute(text(statement), {"n": list(names.values())})
        session.commit()
    assert got == {(names["his"], "ChargesPosted"), (names["his"], "ApplicationStatusChanged"),
                   (names["pacs_ct"], "ApplicationReleased")}


def test_every_notification_written_is_valid_by_its_callback_wsdl(register_charging, sessions):
    """Real payloads of every kind, as the deliverer will write them, against the schemas."""
    from zoneinfo import ZoneInfo

    from lxml import etree

    from his_pacs_ws.domain.notifications import Notification
    from his_pacs_ws.services.deliveries import message_id
    from his_pacs_ws.soap.callbacks import request_body
    from tests.unit.test_notifications import _schema

    h = register_charging
    package = item("PKG1", "增强CT组套", price="0.00", components=[item("CT002", "增强CT"), item("N01", "留置针", price="20.00")])
    number = h.submit(patient_type="INPATIENT", executing="MR", items=[item(modality="MR"), package])
    h.send(number)
    h.pacs(number, "REGISTERED")
    h.push(number, "FINAL", image_urls=["http://pacs/wado?1"], positive=True)
    charge_id = h.get(number)["charges"][0]["charge_id"]
    h.refund(number, [(charge_id, "0.5")])
    cv = h.raise_cv(number)["critical_value"]["critical_value_no"]
    h.acknowledge(cv)
    h.revoke(h.raise_cv(number)["critical_value"]["critical_value_no"])
    other = h.released()
    h.cancel(other)
    schemas = {"HIS": _schema("his-callback.wsdl"), "PACS": _schema("pacs-callback.wsdl")}
    with sessions() as session:
        rows = list(session.execute(text(
            "SELECT id, kind, target_role, payload, occurred_at FROM outbox_events "
            "WHERE application_no IN (:a, :b) ORDER BY id"), {"a": number, "b": other}))
    assert {row.kind for row in rows} >= {"ApplicationReleased", "ApplicationCancelled", "ApplicationStatusChanged",
                                          "ChargesPosted", "ReportPublished", "CriticalValueRaised",
                                          "CriticalValueUpdated", "CriticalValueRevoked"}
    for row in rows:
        plain = {**row.payload, "message_id": message_id(row.id), "sequence": row.id, "occurred_at": row.occurred_at}
        envelope = etree.fromstring(request_body(Notification(row.kind), plain, ZoneInfo("Asia/Shanghai"), None))
        wrapper = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
        assert schemas[row.target_role].validate(wrapper), (row.kind, schemas[row.target_role].error_log)


def test_prune_forgets_delivered_notifications_and_keeps_failed_ones(hospital, sessions):
    from datetime import datetime, timezone

    from his_pacs_ws.db.engine import UnitOfWork

    number = hospital.released()
    name = unique("prune")
    with sessions() as session:
        events_ = list(session.scalars(text("SELECT id FROM outbox_events WHERE application_no = :no ORDER BY id LIMIT 2"),
                                        {"no": number}))
        system = session.execute(text(
            "INSERT INTO systems (name, role, secret, enabled, auth_failures) VALUES (:n, 'PACS', '\\x00', true, 0) "
            "RETURNING id"), {"n": name}).scalar_one()
        for event, (status, delivered) in zip(events_, (("DELIVERED", "2020-01-01"), ("FAILED", None))):
            session.execute(text(
                "INSERT INTO deliveries (event_pk, system_pk, application_no, status, priority, attempts, "
                "next_attempt_at, expires_at, delivered_at) VALUES (:e, :s, :no, :st, 1, 1, now(), now(), :d)"),
                {"e": event, "s": system, "no": number, "st": status, "d": delivered})
        session.commit()
    try:
        assert deliveries.prune(UnitOfWork(sessions), datetime(2021, 1, 1, tzinfo=timezone.utc)) >= 1
        with sessions() as session:
            left = [row[0] for row in session.execute(
                text("SELECT status FROM deliveries WHERE system_pk = :s"), {"s": system})]
        assert left == ["FAILED"]
    finally:  # a row whose secret no key opens: the SOAP tier's server would refuse to start
        with sessions() as session:
            session.execute(text("DELETE FROM deliveries WHERE system_pk = :s"), {"s": system})
            session.execute(text("DELETE FROM systems WHERE id = :s"), {"s": system})
            session.commit()

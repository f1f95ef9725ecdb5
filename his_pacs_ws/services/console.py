"""What the operator console shows that no SOAP operation answers: the critical-value board,
the partner systems' activity, the pictures, and the figures behind /metrics."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.domain.access import Caller, Role
from his_pacs_ws.services import applications, critical_values, ledger, records
from his_pacs_ws.services.systems import list_systems

# The console reads everything, as the command-line audit does; it changes nothing clinical.
CONSOLE = Caller("console", Role.ADMIN)
OPEN = ("RAISED", "RECEIVED")


def _now() -> datetime:
    return datetime.now(timezone.utc)


def critical_board(uow: UnitOfWork, settings: Settings, at: datetime | None = None) -> list[dict]:
    """Open critical values (not handled, not revoked): the overdue first (longest overdue
    on top), then the unreceived by time left, then those received and awaiting handling."""
    at = at or _now()
    values = critical_values.query_critical_values(uow, settings, CONSOLE, {"statuses": list(OPEN)})["critical_values"]
    for cv in values:
        left = (cv["ack_deadline"] - at).total_seconds() / 60
        # whole minutes, toward zero: 1.9 left is 1, 3.2 overdue is -3
        cv["minutes_left"] = int(left) if cv["status"] == "RAISED" else None
        # overdue on the board: still unreceived past the deadline (one received late is
        # "overdue" in the audit, but nobody has to run for it any more)
        cv["waiting_overdue"] = cv["status"] == "RAISED" and cv["overdue"]
    values.sort(key=lambda cv: (0 if cv["waiting_overdue"] else 1 if cv["status"] == "RAISED" else 2,
                                cv["ack_deadline"] if cv["status"] == "RAISED" else cv["reported_at"]))
    return values


def critical_audit(uow: UnitOfWork, settings: Settings, *, since: datetime | None, until: datetime | None,
                   department_code: str | None = None, overdue_only: bool = False) -> list[dict]:
    """Every loop reported in the period, with who and when at each step."""
    return critical_values.query_critical_values(uow, settings, CONSOLE, {
        "from": since, "to": until, "department_code": department_code, "overdue_only": overdue_only,
    })["critical_values"]


def application_page(uow: UnitOfWork, settings: Settings, application_no: str) -> dict:
    """Everything about one application: detail, timeline, ledger, reports, critical values
    and every call about it. ApplicationNotFound when there is none."""
    page = applications.get_application(uow, settings, CONSOLE, {"application_no": application_no})
    money = ledger.query_charges(uow, settings, CONSOLE, {"application_no": application_no})
    page.update(
        charges=money["charges"], refunds=money["refunds"], total_charged=money["total_charged"],
        total_refunded=money["total_refunded"],
        critical_values=critical_values.query_critical_values(
            uow, settings, CONSOLE, {"application_no": application_no})["critical_values"],
        calls=records.search_calls(uow, application_no=application_no, limit=500),
    )
    return page


def systems_overview(uow: UnitOfWork, at: datetime | None = None) -> list[dict]:
    """Each partner system with its last call, and its calls and faults of the last day."""
    at = at or _now()
    systems = list_systems(uow)
    with uow:
        activity = uow.console.system_activity(at - timedelta(days=1))
    for system in systems:
        system.update(activity.get(system["name"], {"last_call_at": None, "calls": 0, "faults": 0}))
    return systems


def calls_per_minute(uow: UnitOfWork, since: datetime, until: datetime) -> dict:
    """Calls per minute by outcome: {'minutes': [...], 'OK': [...], 'FAULT': [...]}, every minute
    of [since, until) present."""
    start = since.replace(second=0, microsecond=0)
    minutes = []
    moment = start
    while moment < until:
        minutes.append(moment)
        moment += timedelta(minutes=1)
    index = {m: i for i, m in enumerate(minutes)}
    series = {"OK": [0] * len(minutes), "FAULT": [0] * len(minutes)}
    with uow:
        for minute, outcome, count in uow.console.calls_per_minute(start, until):
            i = index.get(minute.astimezone(timezone.utc))
            if i is not None:
                series.setdefault(outcome, [0] * len(minutes))[i] += count
    return {"minutes": minutes, **series}


def turnaround(uow: UnitOfWork, since: datetime, until: datetime) -> dict:
    """Median and p90 minutes by department: order to verified report (executing department),
    critical value to receipt and to handling (the patient's department)."""
    with uow:
        reports = [{"department": d, "median": m, "p90": p, "count": n}
                   for d, m, p, n in uow.console.report_turnaround(since, until)]
        critical = [{"department": d, "receive": {"median": rm, "p90": rp, "count": rn},
                     "handle": {"median": hm, "p90": hp, "count": hn}}
                    for d, rm, rp, rn, hm, hp, hn in uow.console.critical_times(since, until)]
    return {"reports": reports, "critical": critical}


def metrics_snapshot(uow: UnitOfWork, at: datetime | None = None) -> dict:
    """The figures /metrics reads from the database at scrape time, shared by every worker."""
    at = at or _now()
    with uow:
        open_, overdue = uow.console.critical_counts(at)
        failures = uow.console.auth_failures()
        outbox = uow.console.outbox_gauges()
    return {"critical_open": open_, "critical_overdue": overdue, "auth_failures": failures, "outbox": outbox}


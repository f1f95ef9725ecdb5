"""Aggregates for the console's pictures and the partner-system page, computed in PostgreSQL."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, and_, cast, extract, func, select
from sqlalchemy.orm import Session

from his_pacs_ws.db.models import (
    Application,
    CallbackEndpoint,
    CallRecord,
    CriticalValue,
    Delivery,
    PartnerSystem,
    Report,
)
from his_pacs_ws.domain.notifications import DeliveryStatus

_WAITING = (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value)


def _minutes(later, earlier):
    return cast(extract("epoch", later - earlier), Float) / 60.0


def _percentiles(value):
    return (func.percentile_cont(0.5).within_group(value), func.percentile_cont(0.9).within_group(value),
            func.count(value))


class ConsoleRepository:
    def __init__(self, session: Session):
        self.session = session

    def calls_per_minute(self, since: datetime, until: datetime) -> list[tuple[datetime, str, int]]:
        """(minute, outcome, calls) for every minute with calls in [since, until)."""
        minute = func.date_trunc("minute", CallRecord.at).label("minute")
        stmt = (
            select(minute, CallRecord.outcome, func.count())
            .where(CallRecord.at >= since, CallRecord.at < until)
            .group_by(minute, CallRecord.outcome)
        )
        return [tuple(row) for row in self.session.execute(stmt)]

    def system_activity(self, since: datetime) -> dict[str, dict]:
        """Per known system: the last call it made, and its calls and faults since ``since``
        (its calls to us: our deliveries to it are on the deliveries page)."""
        result = {}
        for system in self.session.scalars(select(PartnerSystem.name)):
            mine = (CallRecord.caller == system, CallRecord.direction == "in")
            last = self.session.scalar(select(func.max(CallRecord.at)).where(*mine))
            calls, faults = self.session.execute(
                select(func.count(), func.count().filter(CallRecord.outcome == "FAULT"))
                .where(*mine, CallRecord.at >= since)
            ).one()
            result[system] = {"last_call_at": last, "calls": calls, "faults": faults}
        return result

    def report_turnaround(self, since: datetime, until: datetime) -> list[tuple[str, float, float, int]]:
        """(executing department, median, p90, count) of the minutes from order to the first
        verified report, for applications ordered in [since, until)."""
        first = (
            select(Report.application_pk,
                   func.min(func.coalesce(Report.verified_at, Report.reported_at)).label("at"))
            .where(Report.result_status.in_(("FINAL", "CORRECTED")))
            .group_by(Report.application_pk)
            .subquery()
        )
        minutes = _minutes(first.c.at, Application.ordered_at)
        stmt = (
            select(Application.executing_department_code, *_percentiles(minutes))
            .join(first, first.c.application_pk == Application.id)
            .where(Application.ordered_at >= since, Application.ordered_at < until)
            .group_by(Application.executing_department_code)
            .order_by(Application.executing_department_code)
        )
        return [tuple(row) for row in self.session.execute(stmt)]

    def critical_times(self, since: datetime, until: datetime) -> list[tuple]:
        """(patient department, receive median, p90, count, handle median, p90, count) in
        minutes from the report, for values reported in [since, until) and not revoked."""
        receive = _minutes(CriticalValue.received_at, CriticalValue.reported_at)
        handle = _minutes(CriticalValue.handled_at, CriticalValue.reported_at)
        stmt = (
            select(CriticalValue.department_code, *_percentiles(receive), *_percentiles(handle))
            .where(CriticalValue.reported_at >= since, CriticalValue.reported_at < until,
                   CriticalValue.revoked_at.is_(None))
            .group_by(CriticalValue.department_code)
            .order_by(CriticalValue.department_code)
        )
        return [tuple(row) for row in self.session.execute(stmt)]

    def critical_counts(self, at: datetime) -> tuple[int, int]:
        """(open, overdue) critical values: open is not yet handled nor revoked; overdue is
        still unreceived past its deadline."""
        open_, overdue = self.session.execute(
            select(
                func.count().filter(CriticalValue.status.in_(("RAISED", "RECEIVED"))),
                func.count().filter(and_(CriticalValue.status == "RAISED", CriticalValue.ack_deadline < at)),
            ).select_from(CriticalValue)
        ).one()
        return open_, overdue

    def outbox_gauges(self) -> list[dict]:
        """Per receiver with a callback: its waiting and failed deliveries, the oldest waiting,
        its streak and whether it is paused. Counts only what is not delivered (a partial
        index), so a scrape costs the same after a million deliveries."""
        counts = {
            (pk, status): (n, oldest) for pk, status, n, oldest in self.session.execute(
                select(Delivery.system_pk, Delivery.status, func.count(), func.min(Delivery.created_at))
                .where(Delivery.status.in_((*_WAITING, DeliveryStatus.FAILED.value)))
                .group_by(Delivery.system_pk, Delivery.status))
        }
        result = []
        for name, pk, paused, streak in self.session.execute(
                select(PartnerSystem.name, PartnerSystem.id, CallbackEndpoint.paused, CallbackEndpoint.failure_streak)
                .join(CallbackEndpoint, CallbackEndpoint.system_pk == PartnerSystem.id).order_by(PartnerSystem.name)):
            waiting = [counts[(pk, s)] for s in _WAITING if (pk, s) in counts]
            result.append({
                "system": name, "paused": paused, "failure_streak": streak,
                "waiting": sum(n for n, _ in waiting), "failed": counts.get((pk, DeliveryStatus.FAILED.value), (0, None))[0],
                "oldest_waiting_at": min((at for _, at in waiting), default=None),
            })
        return result

    def auth_failures(self) -> list[tuple[str, int]]:
        return [tuple(r) for r in self.session.execute(
            select(PartnerSystem.name, PartnerSystem.auth_failures).order_by(PartnerSystem.name))]


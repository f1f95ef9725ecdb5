"""The operator console: sign-in, then pages over the services' own use cases.

Security, in one place: operators' sessions live in PostgreSQL (every worker sees them) as
token digests, expire when idle and after a shift, and are created anew at each sign-in (a
session id from before never carries over). Every form carries a CSRF token: the session's
own, or, before sign-in, a double-submit cookie. Pages are sent with a strict CSP and never
cached. Admin actions check the role on the server and are audited, refused ones too."""

from __future__ import annotations

import csv
import hmac
import io
import logging
import re
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from his_pacs_ws.console import parse_moment
from his_pacs_ws.domain.errors import ServiceError
from his_pacs_ws.services import console as views
from his_pacs_ws.services import deliveries, operators, records
from his_pacs_ws.services.context import Context
from his_pacs_ws.services.operators import OperatorSession, SignInRefused
from his_pacs_ws.services.systems import SystemCommandError, set_enabled
from his_pacs_ws.web import charts
from his_pacs_ws.web.http import Request, Response, redirect
from his_pacs_ws.web.i18n import LANGUAGES, translator
from his_pacs_ws.web.xmlview import pretty_xml

log = logging.getLogger(__name__)

PREFIX = "/console"
HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "hpw_session"
LOGIN_COOKIE = "hpw_login"
LANG_COOKIE = "hpw_lang"
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
]
SEARCH_LIMIT = 200


class Console:
    def __init__(self, context: Context):
        self.context = context
        self.settings = context.settings
        self.tz = context.settings.tz
        self.templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                                     autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["when"] = self._when
        self.templates.filters["who"] = lambda staff: (staff or {}).get("name") or ""
        self._calls_chart: tuple = (None, None)  # (minute, series)
        public = context.settings.public_url
        self.public_host = public.split("://", 1)[-1].split("/", 1)[0] if public else None
        self._max_age = timedelta(seconds=context.settings.delivery_max_age_seconds)  # a retried delivery's new life
        self.css = (HERE / "static" / "console.css").read_bytes()
        self.routes = [
            ("GET", r"/", self.home, False),
            ("GET", r"/messages", self.messages, False),
            ("GET", r"/messages/(\d+)", self.message, False),
            ("GET", r"/applications", self.application_lookup, False),
            ("GET", r"/applications/([^/]+)", self.application, False),
            ("GET", r"/critical", self.critical, False),
            ("GET", r"/critical\.csv", self.critical_csv, False),
            ("GET", r"/deliveries", self.deliveries, False),
            ("POST", r"/deliveries/(\d+)/retry", self.delivery_retry, True),
            ("POST", r"/receivers/([^/]+)/(pause|resume|retry-failed)", self.receiver_action, True),
            ("GET", r"/systems", self.systems, False),
            ("POST", r"/systems/([^/]+)/(enable|disable)", self.system_action, True),
            ("GET", r"/charts", self.charts, False),
            ("GET", r"/audit", self.audit, True),
        ]

    # ---- the WSGI entry -------------------------------------------------------------------
    def __call__(self, environ, start_response):
        req = Request(environ, PREFIX)
        try:
            response = self._dispatch(req)
        except Exception as exc:  # a page that fails says so, without the details
            # the path may name an application: only the kind of failure is logged
            log.error("a console page failed: %s", type(exc).__name__)
            response = self._error(req, None, "500 Internal Server Error", "bad_request")
        headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))),
                   *SECURITY_HEADERS, *response.headers]
        start_response(response.status, headers)
        return [response.body]

    def _dispatch(self, req: Request) -> Response:
        if req.path == "/static/console.css":
            return Response(body=self.css, content_type="text/css; charset=utf-8")
        if "lang" in req.query and req.query["lang"] in LANGUAGES and req.method == "GET":
            query = {k: v for k, v in req.query.items() if k != "lang"}
            response = redirect(req.full_path + ("?" + urlencode(query) if query else ""))
            response.set_cookie(LANG_COOKIE, req.query["lang"], path=PREFIX, secure=req.https,
                                max_age=365 * 86400)
            return response
        if req.path == "/login":
            return self.login(req)
        token = req.cookies.get(SESSION_COOKIE)
        operator = operators.session_for(self.context.uow(), token)
        if operator is None:
            target = req.full_path if req.method == "GET" else PREFIX + "/"
            response = redirect(f"{PREFIX}/login?next={quote(target)}" + ("&expired=1" if token else ""))
            if token:
                response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=req.https)
            return response
        if req.method == "POST":
            if not self._csrf_ok(req, operator.csrf_token):
                return self._error(req, operator, "403 Forbidden", "csrf_failed")
            if req.path == "/logout":
                operators.sign_out(self.context.uow(), token, operator, req.remote_addr)
                response = redirect(PREFIX + "/login")
                response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=req.https)
                return response
        for method, pattern, handler, admin in self.routes:
            match = re.fullmatch(pattern, req.path)
            if match and method == req.method:
                if admin and not operator.is_admin:
                    if req.method == "POST":
                        action, target = _action(req.path, match.groups())
                        operators.audit(self.context.uow(), operator, action, target, "REFUSED", req.remote_addr,
                                        "not an admin")
                    return self._error(req, operator, "403 Forbidden", "admin_only")
                return handler(req, operator, *match.groups())
        return self._error(req, operator, "404 Not Found", "not_found")

    def _csrf_ok(self, req: Request, expected: str) -> bool:
        origin = req.header("Origin")
        if origin and origin != "null":
            # this server as the browser sees it: its Host, a proxy's X-Forwarded-Host, or
            # HIS_PACS_PUBLIC_URL
            ours = {req.header("Host"), req.header("X-Forwarded-Host"), self.public_host} - {None, ""}
            if origin.split("://", 1)[-1].rstrip("/") not in ours:
                return False
        given = req.form.get("csrf", "")
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    # ---- rendering ------------------------------------------------------------------------
    def _language(self, req: Request) -> str:
        return req.cookies.get(LANG_COOKIE) if req.cookies.get(LANG_COOKIE) in LANGUAGES else "zh"

    def _when(self, value, seconds: bool = False) -> str:
        if not value:
            return ""
        return value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")

    def render(self, req: Request, operator: OperatorSession | None, template: str, status: str = "200 OK",
               **values) -> Response:
        language = self._language(req)
        page = self.templates.get_template(template).render(
            t=translator(language), lang=language, operator=operator, prefix=PREFIX, path=req.path,
            csrf=operator.csrf_token if operator else values.pop("login_csrf", ""),
            other_lang="en" if language == "zh" else "zh", **values)
        return Response(status=status, body=page.encode("utf-8"))

    def _error(self, req, operator, status: str, message: str) -> Response:
        return self.render(req, operator, "error.html", status=status, message=message)

    def _period(self, req: Request, default: timedelta) -> tuple[datetime, datetime, str | None]:
        until_now = datetime.now(timezone.utc)
        try:
            since = parse_moment(req.query["since"], self.tz) if req.query.get("since") else until_now - default
            until = parse_moment(req.query["until"], self.tz) if req.query.get("until") else until_now
            return since, until, None
        except ValueError:
            return until_now - default, until_now, "bad_request"

    # ---- sign-in --------------------------------------------------------------------------
    def login(self, req: Request) -> Response:
        target = req.query.get("next") or req.form.get("next") or ""
        if not (target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target):
            target = PREFIX + "/"
        if req.method == "POST":
            cookie = req.cookies.get(LOGIN_COOKIE, "")
            given = req.form.get("csrf", "")
            if not (cookie and given and hmac.compare_digest(cookie.encode(), given.encode())):
                return self._login_form(req, target, "csrf_failed", "403 Forbidden")
            try:
                signed = operators.sign_in(self.context.uow(), req.form.get("name", ""), req.form.get("password", ""),
                                           req.remote_addr, replaces=req.cookies.get(SESSION_COOKIE))
            except SignInRefused as refused:
                return self._login_form(req, target, "sign_in_locked" if refused.reason == "locked"
                                        else "sign_in_invalid", "429 Too Many Requests"
                                        if refused.reason == "locked" else "401 Unauthorized")
            response = redirect(target)
            response.set_cookie(SESSION_COOKIE, signed.token, path=PREFIX, secure=req.https)
            response.delete_cookie(LOGIN_COOKIE, path=PREFIX + "/login", secure=req.https)
            return response
        return self._login_form(req, target, "session_over" if req.query.get("expired") else None)

    def _login_form(self, req: Request, target: str, message: str | None, status: str = "200 OK") -> Response:
        csrf = secrets.token_urlsafe(32)
        response = self.render(req, None, "login.html", status=status, login_csrf=csrf, next=target, message=message)
        response.set_cookie(LOGIN_COOKIE, csrf, path=PREFIX + "/login", secure=req.https)
        return response

    # ---- pages ----------------------------------------------------------------------------
    def home(self, req, operator) -> Response:
        return redirect(PREFIX + "/critical")

    def messages(self, req, operator) -> Response:
        q = req.query
        fields = ("application_no", "patient_id", "message_id", "system", "operation", "fault", "since", "until",
                  "direction")
        form = {k: q.get(k, "").strip() for k in fields}
        error, calls = None, []
        try:
            since = parse_moment(form["since"], self.tz) if form["since"] else None
            until = parse_moment(form["until"], self.tz) if form["until"] else None
        except ValueError:
            error, since, until = "bad_request", None, None
        searched = any(form.values())
        if error is None:
            filters = dict(application_no=form["application_no"] or None, patient_id=form["patient_id"] or None,
                           message_id=form["message_id"] or None, caller=form["system"] or None,
                           operation=form["operation"] or None,
                           fault_code=("*" if form["fault"] == "*" else form["fault"] or None),
                           since=since, until=until, limit=SEARCH_LIMIT)
            if form["direction"] in ("in", "out"):
                filters["direction"] = form["direction"]
            calls = records.search_calls(self.context.uow(), **filters)
        return self.render(req, operator, "messages.html", form=form, calls=calls, error=error, searched=searched,
                           limit=SEARCH_LIMIT)

    def message(self, req, operator, record_id) -> Response:
        call = records.show_call(self.context.uow(), int(record_id))
        if call is None:
            return self._error(req, operator, "404 Not Found", "not_found")
        return self.render(req, operator, "message.html", call=call,
                           request_xml=pretty_xml(call["request_body"]), response_xml=pretty_xml(call["response_body"]))

    def application_lookup(self, req, operator) -> Response:
        number = req.query.get("no", "").strip()
        if number:
            return redirect(f"{PREFIX}/applications/{quote(number, safe='')}")
        return self.render(req, operator, "application_lookup.html")

    def application(self, req, operator, number) -> Response:
        from urllib.parse import unquote

        number = unquote(number)
        try:
            page = views.application_page(self.context.uow(), self.settings, number)
        except ServiceError:
            return self.render(req, operator, "application_lookup.html", status="404 Not Found", missing=number)
        page["deliveries"] = deliveries.list_deliveries(self.context.uow(), application_no=number, limit=200)
        return self.render(req, operator, "application.html", page=page, number=number)

    def _critical_filters(self, req):
        since, until, error = self._period(req, timedelta(days=7))
        department = req.query.get("department", "").strip() or None
        overdue_only = req.query.get("overdue") == "1"
        return since, until, department, overdue_only, error

    def critical(self, req, operator) -> Response:
        board = views.critical_board(self.context.uow(), self.settings)
        since, until, department, overdue_only, error = self._critical_filters(req)
        audit = views.critical_audit(self.context.uow(), self.settings, since=since, until=until,
                                     department_code=department, overdue_only=overdue_only)
        query = urlencode({k: v for k, v in req.query.items() if k in ("since", "until", "department", "overdue")})
        return self.render(req, operator, "critical.html", board=board, audit=audit, error=error,
                           since=since, until=until, department=department or "", overdue_only=overdue_only,
                           csv_query=query, refresh=True, ack_minutes=self.settings.critical_ack_minutes)

    def critical_csv(self, req, operator) -> Response:
        since, until, department, overdue_only, error = self._critical_filters(req)
        if error:
            return self._error(req, operator, "400 Bad Request", error)
        values = views.critical_audit(self.context.uow(), self.settings, since=since, until=until,
                                      department_code=department, overdue_only=overdue_only)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["CriticalValueNo", "Status", "Overdue", "ApplicationNo", "PatientId", "PatientName",
                         "DepartmentCode", "Finding", "ReportedAt", "ReportedBy", "ReviewedBy", "AckDeadline",
                         "ReceivedAt", "ReceivedBy", "ReadBackConfirmed", "MinutesToReceive", "HandledAt",
                         "HandledBy", "HandlingOpinion", "MinutesToHandle", "RevokedAt", "RevokedBy", "RevokeReason"])
        name = lambda staff: (staff or {}).get("name") or ""  # noqa: E731
        for cv in values:
            writer.writerow([_cell(v) for v in (
                cv["critical_value_no"], cv["status"], "yes" if cv["overdue"] else "no", cv["application_no"],
                cv["patient_id"], cv["patient_name"], cv["department_code"], cv["finding"],
                self._when(cv["reported_at"], True), name(cv["reported_by"]), name(cv["reviewed_by"]),
                self._when(cv["ack_deadline"], True), self._when(cv["received_at"], True), name(cv["received_by"]),
                "yes" if cv["read_back_confirmed"] else "no", cv["minutes_to_receive"],
                self._when(cv["handled_at"], True), name(cv["handled_by"]), cv["handling_opinion"],
                cv["minutes_to_handle"], self._when(cv["revoked_at"], True), name(cv["revoked_by"]),
                cv["revoke_reason"])])
        operators.audit(self.context.uow(), operator, "CRITICAL_EXPORT", None, "OK", req.remote_addr,
                        f"{len(values)} values")
        stamp = datetime.now(self.tz).strftime("%Y%m%d-%H%M")
        return Response(body=("\ufeff" + out.getvalue()).encode("utf-8"), content_type="text/csv; charset=utf-8",
                        headers=[("Content-Disposition", f'attachment; filename="critical-values-{stamp}.csv"')])

    def deliveries(self, req, operator) -> Response:
        system = req.query.get("system", "").strip() or None
        queues = deliveries.queues(self.context.uow())
        failed = deliveries.list_deliveries(self.context.uow(), system=system, status="FAILED", limit=200)
        retrying = deliveries.list_deliveries(self.context.uow(), system=system, status="RETRYING", limit=200)
        return self.render(req, operator, "deliveries.html", queues=queues, failed=failed + retrying,
                           system=system or "", done=req.query.get("done"))

    def delivery_retry(self, req, operator, delivery_id) -> Response:
        try:
            deliveries.retry(self.context.uow(), int(delivery_id), self._max_age)
        except Exception as exc:
            operators.audit(self.context.uow(), operator, "DELIVERY_RETRY", f"delivery {delivery_id}", "FAILED",
                            req.remote_addr, type(exc).__name__)
            return self._error(req, operator, "400 Bad Request", "bad_request")
        operators.audit(self.context.uow(), operator, "DELIVERY_RETRY", f"delivery {delivery_id}", "OK",
                        req.remote_addr)
        return redirect(PREFIX + "/deliveries?done=retry")

    def receiver_action(self, req, operator, system, action) -> Response:
        name, _ = _action(req.path, (system, action))
        detail = None
        try:
            if action == "retry-failed":
                detail = f"{deliveries.retry_failed(self.context.uow(), system, self._max_age)} deliveries"
            else:
                deliveries.set_paused(self.context.uow(), system, action == "pause")
        except Exception as exc:
            operators.audit(self.context.uow(), operator, name, system, "FAILED", req.remote_addr, type(exc).__name__)
            return self._error(req, operator, "400 Bad Request", "bad_request")
        operators.audit(self.context.uow(), operator, name, system, "OK", req.remote_addr, detail)
        return redirect(PREFIX + "/deliveries?done=" + action)

    def systems(self, req, operator) -> Response:
        return self.render(req, operator, "systems.html", systems=views.systems_overview(self.context.uow()),
                           done=req.query.get("done"))

    def system_action(self, req, operator, name, action) -> Response:
        try:
            set_enabled(self.context.uow(), name, action == "enable")
        except SystemCommandError as err:
            operators.audit(self.context.uow(), operator, f"SYSTEM_{action.upper()}", name, "FAILED",
                            req.remote_addr, str(err))
            return self._error(req, operator, "404 Not Found", "not_found")
        operators.audit(self.context.uow(), operator, f"SYSTEM_{action.upper()}", name, "OK", req.remote_addr,
                        "running servers follow within 30 seconds")
        return redirect(PREFIX + "/systems?done=" + action)

    def charts(self, req, operator) -> Response:
        now = datetime.now(timezone.utc)
        language = translator(self._language(req))
        # a day of calls, counted once a minute per worker (at a million calls a day the count takes a second)
        minute = now.replace(second=0, microsecond=0)
        if self._calls_chart[0] != minute:
            self._calls_chart = (minute, views.calls_per_minute(self.context.uow(), minute - timedelta(days=1), minute))
        series = self._calls_chart[1]
        calls_svg = charts.calls_per_minute(series, self.tz, {"title": language("calls_per_minute"),
                                                              "ok": language("ok"), "fault": language("faults")})
        since, until, error = self._period(req, timedelta(days=30))
        figures = views.turnaround(self.context.uow(), since, until)
        labels = {"median": language("median"), "p90": language("p90"), "empty": language("no_results")}
        svgs = {
            "reports": charts.percentile_bars(figures["reports"], {**labels, "title": language("report_turnaround")}),
            "receive": charts.percentile_bars([{"department": r["department"], **r["receive"]}
                                               for r in figures["critical"] if r["receive"]["count"]],
                                              {**labels, "title": language("cv_receive")}),
            "handle": charts.percentile_bars([{"department": r["department"], **r["handle"]}
                                              for r in figures["critical"] if r["handle"]["count"]],
                                             {**labels, "title": language("cv_handle")}),
        }
        return self.render(req, operator, "charts.html", calls_svg=Markup(calls_svg),
                           svgs={k: Markup(v) for k, v in svgs.items()}, since=since, until=until, error=error,
                           figures=figures)

    def audit(self, req, operator) -> Response:
        return self.render(req, operator, "audit.html", entries=operators.audit_log(self.context.uow(), limit=300))


def _cell(value) -> str:
    """A CSV cell that a spreadsheet shows as text: never a formula (=, +, -, @ first)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _action(path: str, groups: tuple) -> tuple[str, str]:
    """The audit's name for an admin action, and what it acts on: SYSTEM_DISABLE pacs1."""
    if path.startswith("/deliveries/"):
        return "DELIVERY_RETRY", f"delivery {groups[0]}"
    noun = "SYSTEM" if path.startswith("/systems/") else "RECEIVER"
    return f"{noun}_{groups[1].upper().replace('-', '_')}", groups[0]


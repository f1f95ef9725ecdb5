"""Administration commands for hospital IT: partner systems, the message record, and the
critical-value audit. They work beside a running server, on the same database."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from lxml import etree

from his_pacs_ws.config import Settings
from his_pacs_ws.console import csv_text, parse_moment, table, when


def register(commands, database_options) -> None:
    critical = commands.add_parser(
        "critical-values", help="the critical-value loops, with who and when at every step (for audits)")
    database_options(critical)
    critical.add_argument("--overdue", action="store_true", help="only values not received by their deadline")
    critical.add_argument("--since", help="reported at or after (date or date-time, hospital time)")
    critical.add_argument("--until", help="reported before (date or date-time, hospital time)")
    critical.add_argument("--department", help="the patient's department code")
    critical.add_argument("--status", action="append", choices=["RAISED", "RECEIVED", "HANDLED", "REVOKED"],
                          help="only these statuses (repeatable)")
    critical.add_argument("--format", choices=["table", "csv"], default="table",
                          help="csv: every column in full, for a spreadsheet (default table)")
    critical.set_defaults(run=cmd_critical_values)

    systems = commands.add_parser("systems", help="partner systems allowed to call").add_subparsers(
        dest="systems_command", required=True)
    add = systems.add_parser("add", help="add a HIS or PACS system")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["HIS", "PACS"])
    add.add_argument("--departments", help="PACS only: executing department codes it serves, e.g. CT,MR")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=cmd_systems_add)
    listing = systems.add_parser("list", help="list the systems")
    listing.set_defaults(run=cmd_systems_list)
    disable = systems.add_parser("disable", help="refuse the system's calls from now on")
    disable.add_argument("name")
    disable.set_defaults(run=cmd_systems_enable, enabled=False)
    enable = systems.add_parser("enable", help="accept a disabled system's calls again")
    enable.add_argument("name")
    enable.set_defaults(run=cmd_systems_enable, enabled=True)
    password = systems.add_parser("set-password", help="set a new password")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password.set_defaults(run=cmd_systems_password)
    for parser in (add, listing, disable, enable, password):
        database_options(parser)
    from his_pacs_ws import push_commands

    push_commands.register(commands, systems, database_options)

    messages = commands.add_parser("messages", help="the record of every call").add_subparsers(
        dest="messages_command", required=True)
    search = messages.add_parser("search", help="find calls (newest first)")
    search.add_argument("--application-no")
    search.add_argument("--patient-id")
    search.add_argument("--message-id")
    search.add_argument("--system", help="the calling system's name")
    search.add_argument("--operation")
    search.add_argument("--fault", nargs="?", const="*", help="calls that got this fault code (any, if none)")
    search.add_argument("--since", help="date or date-time, hospital time")
    search.add_argument("--until", help="date or date-time, hospital time")
    search.add_argument("--direction", choices=["in", "out"],
                        help="in: calls partners made; out: our deliveries to their callbacks")
    search.add_argument("--limit", type=int, default=100)
    search.set_defaults(run=cmd_messages_search)
    show = messages.add_parser("show", help="one call with its request and response")
    show.add_argument("id", type=int)
    show.set_defaults(run=cmd_messages_show)
    prune = messages.add_parser("prune", help="drop request and response bodies older than DAYS, keep the rest")
    prune.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    prune.set_defaults(run=cmd_messages_prune)
    for parser in (search, show, prune):
        database_options(parser)


@contextmanager
def _database(settings: Settings):
    """The database as it is: these commands never create or migrate one (`migrate` does),
    and they say which one they use."""
    from his_pacs_ws.cli import current_database, describe_database
    from his_pacs_ws.services.context import open_context

    url = current_database(settings)
    print(f"his-pacs-ws: database: {describe_database(settings)}", file=sys.stderr)
    context = open_context(settings, url)
    try:
        yield context
    finally:
        context.engine.dispose()


def _fail(message: str, status: int = 1) -> int:
    print(f"his-pacs-ws: {message}", file=sys.stderr)
    return status


def _box(settings: Settings, context):
    """The servers' key, checked against the stored passwords; a new one only for the first system."""
    from his_pacs_ws.services.keys import created_notice, open_key

    key = open_key(settings, context.uow(), create=True)
    print(f"his-pacs-ws: {created_notice(key)}" if key.created else f"his-pacs-ws: secret key {key.source}",
          file=sys.stderr)
    return key.box


def _password(args) -> str | None:
    if not args.password_stdin:
        return None
    return sys.stdin.readline().rstrip("\r\n")


def _system_command(settings: Settings, work, done: str, *, needs_password: bool = False, args=None) -> int:
    """Run one partner-system change; its refusals are one-line messages, exit status 1."""
    from his_pacs_ws.services.systems import SystemCommandError

    password = None
    if needs_password:
        password = _password(args)
        if password is None:
            return _fail("give the password on standard input with --password-stdin (never on the command line)", 2)
    with _database(settings) as context:
        try:
            work(context, password)
        except SystemCommandError as err:
            return _fail(str(err))
    print(done)
    return 0


def cmd_systems_add(settings: Settings, args) -> int:
    from his_pacs_ws.services.systems import add_system

    departments = [d.strip() for d in args.departments.split(",") if d.strip()] if args.departments else None
    return _system_command(
        settings,
        lambda context, password: add_system(context.uow(), _box(settings, context), args.name, args.role, password,
                                             departments),
        f"system {args.name} added ({args.role}{', departments ' + ','.join(departments) if departments else ''})",
        needs_password=True, args=args,
    )


def cmd_systems_password(settings: Settings, args) -> int:
    from his_pacs_ws.services.systems import set_password

    return _system_command(
        settings,
        lambda context, password: set_password(context.uow(), _box(settings, context), args.name, password),
        f"password of {args.name} set; running servers accept it within 30 seconds",
        needs_password=True, args=args,
    )


def cmd_systems_enable(settings: Settings, args) -> int:
    from his_pacs_ws.services.systems import set_enabled

    return _system_command(
        settings,
        lambda context, _: set_enabled(context.uow(), args.name, args.enabled),
        f"system {args.name} {'enabled' if args.enabled else 'disabled'}; running servers follow within 30 seconds",
    )


def cmd_systems_list(settings: Settings, args) -> int:
    from his_pacs_ws.services.systems import list_systems

    with _database(settings) as context:
        systems = list_systems(context.uow())
    tz = settings.tz
    print(table(("Name", "Role", "Departments", "Enabled", "Auth failures", "Last failure", "Changed"), [
        (s["name"], s["role"], ",".join(s["departments"]) if s["departments"] else "(all)",
         "yes" if s["enabled"] else "NO", str(s["auth_failures"]), when(s["last_failure_at"], tz),
         when(s["updated_at"], tz))
        for s in systems
    ]))
    return 0


def cmd_messages_search(settings: Settings, args) -> int:
    from his_pacs_ws.services.records import search_calls

    tz = settings.tz
    try:
        since = parse_moment(args.since, tz) if args.since else None
        until = parse_moment(args.until, tz) if args.until else None
    except ValueError as err:
        return _fail(str(err), 2)
    with _database(settings) as context:
        calls = search_calls(context.uow(), application_no=args.application_no, patient_id=args.patient_id,
                             message_id=args.message_id, caller=args.system, operation=args.operation,
                             fault_code=args.fault, since=since, until=until, direction=args.direction,
                             limit=args.limit)
    print(table(("ID", "At", "Dir", "Service", "System", "Operation", "MessageId", "ApplicationNo", "Outcome", "ms"), [
        (str(c["id"]), when(c["at"], tz, "seconds"), c["direction"], c["service"],
         c["caller"] or "-",
         c["operation"] or "-", c["message_id"] or "", c["application_no"] or "",
         (c["fault_code"] or "OK") + (" (replay)" if c["replayed"] else ""), str(c["duration_ms"]))
        for c in calls
    ]))
    print(f"\n{len(calls)} calls" + (f" (the newest {args.limit}; use --limit for more)" if len(calls) == args.limit
                                     else ""))
    return 0


def _pretty(body: bytes | None) -> str:
    if body is None:
        return "(pruned)"
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
        return etree.tostring(etree.fromstring(body, parser), pretty_print=True, encoding="unicode")
    except etree.XMLSyntaxError:
        return body.decode("utf-8", "replace")


def cmd_messages_show(settings: Settings, args) -> int:
    from his_pacs_ws.services.records import show_call

    with _database(settings) as context:
        call = show_call(context.uow(), args.id)
    if call is None:
        return _fail(f"no call record {args.id}")
    tz = settings.tz
    for label, key in (("At", "at"), ("Service", "service"), ("System", "caller"), ("From", "remote_addr"),
                       ("Operation", "operation"), ("MessageId", "message_id"), ("ApplicationNo", "application_no"),
                       ("PatientId", "patient_id"), ("Direction", "direction"), ("Delivery", "delivery_pk"),
                       ("Outcome", "outcome"), ("Fault", "fault_code"),
                       ("Duration ms", "duration_ms"), ("Replayed", "replayed")):
        value = call[key]
        if isinstance(value, datetime):
            value = value.astimezone(tz).isoformat()
        print(f"{label + ':':<15}{'' if value is None else value}")
    print("\n--- request ---\n" + _pretty(call["request_body"]))
    print("--- response ---\n" + _pretty(call["response_body"]))
    return 0


def cmd_messages_prune(settings: Settings, args) -> int:
    from his_pacs_ws.services.records import prune_bodies

    if args.older_than < 0:
        return _fail("--older-than takes a number of days, 0 or more", 2)
    before = datetime.now(timezone.utc) - timedelta(days=args.older_than)
    with _database(settings) as context:
        count = prune_bodies(context.uow(), before)
    print(f"dropped the bodies of {count} calls older than {args.older_than} days; their records remain")
    return 0


def cmd_critical_values(settings: Settings, args) -> int:
    from his_pacs_ws.domain.access import Caller, Role
    from his_pacs_ws.services.critical_values import query_critical_values

    tz = settings.tz
    try:
        request = {
            "from": parse_moment(args.since, tz) if args.since else None,
            "to": parse_moment(args.until, tz) if args.until else None,
            "overdue_only": args.overdue, "department_code": args.department, "statuses": args.status,
        }
    except ValueError as err:
        return _fail(str(err), 2)
    with _database(settings) as context:
        values = query_critical_values(context.uow(), settings, Caller("CLI", Role.ADMIN), request)["critical_values"]

    def who(staff):
        return staff["name"] if staff else ""

    def minutes(value):
        return f"{value}" if value is not None else ""

    if args.format == "csv":
        sys.stdout.write(csv_text(
            ("CriticalValueNo", "Status", "Overdue", "ApplicationNo", "PatientId", "Patient", "Department",
             "Finding", "ReportedAt", "ReportedBy", "ReviewedBy", "AckDeadline", "ReceivedAt", "ReceivedBy",
             "MinutesToReceive", "HandledAt", "HandledBy", "MinutesToHandle", "HandlingOpinion", "RevokedAt"),
            [(cv["critical_value_no"], cv["status"], "yes" if cv["overdue"] else "no", cv["application_no"],
              cv.get("patient_id") or "", cv["patient_name"], cv["department_code"], cv["finding"],
              when(cv["reported_at"], tz, "seconds"), who(cv["reported_by"]), who(cv["reviewed_by"]),
              when(cv["ack_deadline"], tz, "seconds"), when(cv["received_at"], tz, "seconds"),
              who(cv["received_by"]), minutes(cv["minutes_to_receive"]), when(cv["handled_at"], tz, "seconds"),
              who(cv["handled_by"]), minutes(cv["minutes_to_handle"]), cv.get("handling_opinion") or "",
              when(cv["revoked_at"], tz, "seconds"))
             for cv in values]))
        return 0
    rows = [
        (cv["critical_value_no"], cv["status"], "yes" if cv["overdue"] else "", cv["application_no"],
         cv["patient_name"], cv["department_code"], cv["finding"],
         when(cv["reported_at"], tz), who(cv["reported_by"]), who(cv["reviewed_by"]), when(cv["ack_deadline"], tz),
         when(cv["received_at"], tz), who(cv["received_by"]), minutes(cv["minutes_to_receive"]),
         when(cv["handled_at"], tz), who(cv["handled_by"]), minutes(cv["minutes_to_handle"]),
         when(cv["revoked_at"], tz))
        for cv in values
    ]
    print(table(("No", "Status", "Overdue", "Application", "Patient", "Dept", "Finding", "Reported", "By",
                 "Checked by", "Deadline", "Received", "By", "Min", "Handled", "By", "Min", "Revoked"),
                rows, limits={6: 24}))
    overdue = sum(1 for cv in values if cv["overdue"])
    print(f"\n{len(values)} critical value{'' if len(values) == 1 else 's'}, {overdue} overdue (deadline {settings.critical_ack_minutes} min); "
          f"times are {settings.timezone}")
    return 0

"""Push mode's commands: partners' callbacks (`systems set-callback|callback-off`), the
deliverer (`deliver`), and the delivery queue (`deliveries list|show|retry|pause|resume`)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from his_pacs_ws.config import Settings
from his_pacs_ws.domain.notifications import DeliveryStatus
from his_pacs_ws.console import table, when


def register(commands, systems, database_options) -> None:
    callback = systems.add_parser("set-callback", help="where the system receives pushed notifications")
    callback.add_argument("name")
    callback.add_argument("--url", required=True, help="its HisCallbackService or PacsCallbackService address")
    callback.add_argument("--events", help="only these notifications, comma-separated (default: all of its role)")
    callback.add_argument("--username", help="a UsernameToken to send (with --password-stdin)")
    callback.add_argument("--password-stdin", action="store_true", help="read that token's password from stdin")
    callback.add_argument("--password-type", choices=["digest", "text"], default="digest",
                          help="PasswordDigest (default) or PasswordText")
    callback.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer (default 10)")
    callback.set_defaults(run=cmd_set_callback)
    off = systems.add_parser("callback-off", help="stop pushing to the system (its waiting deliveries fail)")
    off.add_argument("name")
    off.set_defaults(run=cmd_callback_off)

    deliver = commands.add_parser("deliver", help="run a deliverer: push notifications to the partners' callbacks")
    deliver.add_argument("--threads", type=int, help="parallel deliveries (env HIS_PACS_DELIVERY_THREADS, default 4)")
    deliver.set_defaults(run=cmd_deliver)

    queue = commands.add_parser("deliveries", help="the push delivery queue").add_subparsers(
        dest="deliveries_command", required=True)
    listing = queue.add_parser("list", help="deliveries, newest first; without filters, the queue per receiver")
    listing.add_argument("--system")
    listing.add_argument("--status", choices=[s.value for s in DeliveryStatus])
    listing.add_argument("--application-no")
    listing.add_argument("--limit", type=int, default=100)
    listing.set_defaults(run=cmd_list)
    show = queue.add_parser("show", help="one delivery with every attempt and its exchange")
    show.add_argument("id", type=int)
    show.set_defaults(run=cmd_show)
    retry = queue.add_parser("retry", help="send FAILED deliveries again (same MessageId)")
    retry.add_argument("id", type=int, nargs="?")
    retry.add_argument("--system", help="with --failed: every failed delivery to this system")
    retry.add_argument("--failed", action="store_true")
    retry.set_defaults(run=cmd_retry)
    pause = queue.add_parser("pause", help="hold every delivery to a system (kept, not sent)")
    pause.add_argument("name")
    pause.set_defaults(run=cmd_pause, paused=True)
    resume = queue.add_parser("resume", help="deliver to a paused system again")
    resume.add_argument("name")
    resume.set_defaults(run=cmd_pause, paused=False)
    prune = queue.add_parser("prune", help="forget delivered notifications older than DAYS (failed ones stay)")
    prune.add_argument("--older-than", type=int, required=True, metavar="DAYS")
    prune.set_defaults(run=cmd_prune)
    for parser in (callback, off, deliver, listing, show, retry, pause, resume, prune):
        database_options(parser)


def _admin():
    from his_pacs_ws import admin

    return admin


def cmd_set_callback(settings: Settings, args) -> int:
    from his_pacs_ws.services.deliveries import set_callback

    admin = _admin()
    password = admin._password(args)
    if args.username and password is None:
        return admin._fail("give the callback password on standard input with --password-stdin", 2)
    return admin._system_command(
        settings,
        lambda context, _: set_callback(
            context.uow(), admin._box(settings, context), args.name, url=args.url, events=args.events,
            username=args.username, password=password, password_type=args.password_type,
            timeout_seconds=args.timeout),
        f"{args.name} receives its notifications at {args.url}; deliverers use it from the next delivery",
    )


def cmd_callback_off(settings: Settings, args) -> int:
    from his_pacs_ws.services.deliveries import callback_off

    failed = []
    result = _admin()._system_command(
        settings, lambda context, _: failed.append(callback_off(context.uow(), args.name)),
        f"nothing more is pushed to {args.name}")
    if failed and failed[0]:
        print(f"{failed[0]} waiting deliveries are FAILED; `deliveries retry --system {args.name} --failed` "
              "sends them once a callback is set again")
    return result


def cmd_deliver(settings: Settings, args) -> int:
    from his_pacs_ws.cli import current_database
    from his_pacs_ws.delivery import deliver_forever

    if args.threads is not None and not 1 <= args.threads <= 64:
        return _admin()._fail("--threads is between 1 and 64", 2)
    # the database `serve` or `migrate` made and brought up to date: a deliverer started in
    # the wrong directory must not deliver from a new, empty one
    deliver_forever(settings, current_database(settings), threads=args.threads)
    return 0


def cmd_list(settings: Settings, args) -> int:
    from his_pacs_ws.services import deliveries
    from his_pacs_ws.services.systems import SystemCommandError

    tz = settings.tz
    admin = _admin()
    with admin._database(settings) as context:
        try:
            if not (args.system or args.status or args.application_no):
                return _print_queues(deliveries.queues(context.uow()), tz)
            rows = deliveries.list_deliveries(context.uow(), system=args.system, status=args.status,
                                              application_no=args.application_no, limit=args.limit)
        except SystemCommandError as err:
            return admin._fail(str(err))
    print(table(("ID", "Receiver", "Operation", "ApplicationNo", "Seq", "Status", "Tries", "Occurred", "Next try",
                 "Last outcome"), [
        (str(d["id"]), d["system"], d["operation"], d["application_no"], str(d["sequence"]), d["status"],
         str(d["attempts"]), when(d["occurred_at"], tz),
         when(d["next_attempt_at"], tz) if d["status"] in (DeliveryStatus.PENDING.value, DeliveryStatus.RETRYING.value) else "",
         " ".join(filter(None, (d["last_outcome"], d["last_fault_code"]))))
        for d in rows
    ]))
    print(f"\n{len(rows)} deliveries; times are {settings.timezone}")
    return 0


def _print_queues(queues: list[dict], tz) -> int:
    print(table(("Receiver", "Role", "URL", "State", "Pending", "Retrying", "Failed", "Delivered", "Oldest waiting",
                 "Failing since"), [
        (q["system"], q["role"], q["url"], "paused" if q["paused"] else ("failing" if q["failure_streak"] else "ok"),
         str(q["pending"]), str(q["retrying"]), str(q["failed"]), str(q["delivered"]),
         when(q["oldest_pending_at"], tz), when(q["failing_since"], tz))
        for q in queues
    ]))
    if not queues:
        print("\nno system has a callback: `his-pacs-ws systems set-callback NAME --url URL`")
    return 0


def cmd_show(settings: Settings, args) -> int:
    from his_pacs_ws.services.deliveries import show_delivery
    from his_pacs_ws.services.systems import SystemCommandError

    admin = _admin()
    tz = settings.tz
    with admin._database(settings) as context:
        try:
            d = show_delivery(context.uow(), args.id)
        except SystemCommandError as err:
            return admin._fail(str(err))
    for label, key in (("Receiver", "system"), ("Operation", "operation"), ("MessageId", "message_id"),
                       ("Sequence", "sequence"), ("ApplicationNo", "application_no"), ("Status", "status"),
                       ("Attempts", "attempts"), ("Occurred", "occurred_at"), ("Queued", "created_at"),
                       ("Next attempt", "next_attempt_at"), ("Gives up at", "expires_at"),
                       ("Delivered", "delivered_at"), ("Last outcome", "last_outcome"),
                       ("HTTP status", "last_http_status"), ("Fault", "last_fault_code"), ("Answer", "last_error")):
        value = d[key]
        if isinstance(value, datetime):
            value = value.astimezone(tz).isoformat()
        print(f"{label + ':':<15}{'' if value is None else value}")
    for n, attempt in enumerate(d["attempts_made"], 1):
        print(f"\n=== attempt {n}: {attempt['at'].astimezone(tz).isoformat()}, {attempt['outcome']}"
              f"{' ' + attempt['fault_code'] if attempt['fault_code'] else ''}, {attempt['duration_ms']} ms "
              f"(messages show {attempt['call_record']})")
        print("--- request ---\n" + admin._pretty(attempt["request_body"]))
        print("--- response ---\n" + admin._pretty(attempt["response_body"]) if attempt["response_body"]
              else "--- no response ---")
    return 0


def cmd_retry(settings: Settings, args) -> int:
    from his_pacs_ws.services import deliveries

    admin = _admin()
    max_age = timedelta(seconds=settings.delivery_max_age_seconds)
    if args.id is not None and not args.failed:
        return admin._system_command(
            settings, lambda context, _: deliveries.retry(context.uow(), args.id, max_age),
            f"delivery {args.id} is queued again, with the same MessageId")
    if args.failed and args.system and args.id is None:
        counted = []
        result = admin._system_command(
            settings, lambda context, _: counted.append(deliveries.retry_failed(context.uow(), args.system, max_age)),
            f"failed deliveries to {args.system} are queued again")
        if counted:
            print(f"{counted[0]} deliveries")
        return result
    print("his-pacs-ws: deliveries retry ID, or deliveries retry --system NAME --failed", file=sys.stderr)
    return 2


def cmd_pause(settings: Settings, args) -> int:
    from his_pacs_ws.services.deliveries import set_paused

    return _admin()._system_command(
        settings, lambda context, _: set_paused(context.uow(), args.name, args.paused),
        f"deliveries to {args.name} {'paused: they wait until resumed' if args.paused else 'resumed'}")


def cmd_prune(settings: Settings, args) -> int:
    from datetime import timezone

    from his_pacs_ws.services.deliveries import prune

    admin = _admin()
    if args.older_than < 0:
        return admin._fail("--older-than takes a number of days, 0 or more", 2)
    before = datetime.now(timezone.utc) - timedelta(days=args.older_than)
    with admin._database(settings) as context:
        count = prune(context.uow(), before)
    print(f"forgot {count} notifications delivered more than {args.older_than} days ago; "
          "their exchanges stay in the message record")
    return 0

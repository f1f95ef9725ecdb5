"""View mode (视图/中间库) on the command line: `views grant|revoke|list` for partner login
roles, `inbox` for the PACS inbox processor, and the processor `serve` starts beside it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager

from his_pacs_ws.config import Settings
from his_pacs_ws.console import table, when

log = logging.getLogger(__name__)


def register(commands, database_options) -> None:
    views = commands.add_parser(
        "views", help="partners that read the exchange views (and write the PACS inbox) as database logins"
    ).add_subparsers(dest="views_command", required=True)
    grant = views.add_parser("grant", help="create (or update) a partner's login role")
    grant.add_argument("name", help="the partner's name, which is also its database login")
    grant.add_argument("--role", required=True, choices=["HIS", "PACS"])
    grant.add_argument("--departments", help="PACS only: executing department codes it serves, e.g. CT,MR")
    grant.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    grant.set_defaults(run=cmd_views_grant)
    revoke = views.add_parser("revoke", help="drop a partner's login role, ending its sessions")
    revoke.add_argument("name")
    revoke.set_defaults(run=cmd_views_revoke)
    listing = views.add_parser("list", help="the view partners and their inbox rows")
    listing.set_defaults(run=cmd_views_list)
    for parser in (grant, revoke, listing):
        database_options(parser)

    inbox = commands.add_parser("inbox", help="process the PACS inbox (serve runs this itself)")
    database_options(inbox)
    inbox.add_argument("--once", action="store_true", help="process the pending rows, then exit")
    inbox.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    inbox.set_defaults(run=cmd_inbox)


def cmd_views_grant(settings: Settings, args) -> int:
    from his_pacs_ws.admin import _database, _fail, _password
    from his_pacs_ws.services.exchange import grant
    from his_pacs_ws.services.systems import SystemCommandError

    password = _password(args)
    if password is None:
        return _fail("give the password on standard input with --password-stdin (never on the command line)", 2)
    departments = args.departments.split(",") if args.departments else None
    with _database(settings) as context:
        try:
            outcome = grant(context.uow(), args.name, args.role, password, departments)
        except SystemCommandError as err:
            return _fail(str(err))
    scope = f", departments {','.join(sorted(d.strip() for d in departments if d.strip()))}" if departments else ""
    print(f"view partner {args.name} {outcome} ({args.role}{scope}): it logs in as {args.name} and reads the "
          "exchange views" + (" and writes exchange.pacs_inbox" if args.role == "PACS" else ""))
    return 0


def cmd_views_revoke(settings: Settings, args) -> int:
    from his_pacs_ws.admin import _database, _fail
    from his_pacs_ws.services.exchange import revoke
    from his_pacs_ws.services.systems import SystemCommandError

    with _database(settings) as context:
        try:
            ended = revoke(context.uow(), args.name)
        except SystemCommandError as err:
            return _fail(str(err))
    print(f"view partner {args.name} revoked: its login role is dropped ({ended} open sessions ended); "
          "its inbox rows remain")
    return 0


def cmd_views_list(settings: Settings, args) -> int:
    from his_pacs_ws.admin import _database
    from his_pacs_ws.services.exchange import list_partners

    with _database(settings) as context:
        partners = list_partners(context.uow())
    tz = settings.tz
    print(table(("Name", "Role", "Departments", "Login", "Inbox pending", "Processed", "Refused", "Changed"), [
        (p["name"], p["role"], ",".join(p["departments"]) if p["departments"] else "(all)",
         "yes" if p["login"] else "MISSING", str(p["pending"]), str(p["processed"]), str(p["refused"]),
         when(p["updated_at"], tz))
        for p in partners
    ]))
    return 0


def cmd_inbox(settings: Settings, args) -> int:
    from his_pacs_ws.cli import current_database
    from his_pacs_ws.db.exchange import InboxListener
    from his_pacs_ws.services import inbox
    from his_pacs_ws.services.context import open_context

    # not admin's: this one logs each row; like deliver, never a new database in the wrong directory
    context = open_context(settings, current_database(settings))
    try:
        if args.once:
            print(f"{inbox.drain(context)} inbox rows processed")
            return 0
        stopping = []
        for signum in (signal.SIGTERM, signal.SIGINT):  # serve's stop, or Ctrl-C on its terminal
            signal.signal(signum, lambda *_: stopping.append(True))

        def keep_going() -> bool:
            # started by serve: end with it, even if it was killed and never said so
            return not stopping and (args.parent_pid is None or os.getppid() == args.parent_pid)

        listener = InboxListener(context.engine.url.render_as_string(hide_password=False))
        log.info("processing the PACS inbox (sweep every %s s)", settings.inbox_sweep_seconds)
        try:
            inbox.run(context, listener, sweep_seconds=settings.inbox_sweep_seconds, keep_going=keep_going)
        finally:
            listener.close()
    finally:
        context.engine.dispose()
    return 0


@contextmanager
def inbox_processor(settings: Settings, database_url: str):
    """For serve: the inbox processor as a child process, started again if it dies, that
    ends with serve (told so, or on its own when serve is gone)."""
    if not settings.inbox:
        yield None
        return
    from his_pacs_ws.server import _die_with_parent

    env = {**os.environ, "HIS_PACS_DATABASE_URL": database_url,  # not argv: ps shows that
           "HIS_PACS_LOG_FORMAT": settings.log_format, "HIS_PACS_LOG_LEVEL": settings.log_level}
    env.pop("HIS_PACS_VIEWS_LISTEN", None)  # the child joins the database serve started
    command = [sys.executable, "-m", "his_pacs_ws.cli", "inbox", "--parent-pid", str(os.getpid())]
    stopping = threading.Event()

    def spawn() -> subprocess.Popen:
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env, preexec_fn=_die_with_parent)
        log.info("PACS inbox processor started (pid %s)", child.pid)
        return child

    children = [spawn()]

    def watch() -> None:
        while not stopping.wait(2.0):
            if children[0].poll() is not None and not stopping.is_set():
                log.warning("PACS inbox processor %s exited with status %s; starting another", children[0].pid,
                            children[0].returncode)
                children[0] = spawn()

    threading.Thread(target=watch, name="inbox-processor", daemon=True).start()
    try:
        yield children
    finally:
        stopping.set()
        child = children[0]
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

"""`his-pacs-ws operators ...`: the people who sign in to the console."""

from __future__ import annotations

from his_pacs_ws.config import Settings
from his_pacs_ws.console import table, when


def register(commands, database_options) -> None:
    operators = commands.add_parser("operators", help="people who sign in to the console at /console").add_subparsers(
        dest="operators_command", required=True)
    add = operators.add_parser("add", help="add an operator (viewer: looks; admin: also retries, pauses, disables)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["viewer", "admin"])
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=cmd_add)
    listing = operators.add_parser("list", help="list the operators")
    listing.set_defaults(run=cmd_list)
    password = operators.add_parser("set-password", help="set a new password (ends the operator's sessions)")
    password.add_argument("name")
    password.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    password.set_defaults(run=cmd_password)
    disable = operators.add_parser("disable", help="refuse the operator's sign-ins and end the sessions")
    disable.add_argument("name")
    disable.set_defaults(run=cmd_enable, enabled=False)
    enable = operators.add_parser("enable", help="allow a disabled operator again")
    enable.add_argument("name")
    enable.set_defaults(run=cmd_enable, enabled=True)
    for parser in (add, listing, password, disable, enable):
        database_options(parser)


def _run(settings: Settings, work, done: str, args=None, needs_password: bool = False) -> int:
    """Run one operator change as the partner-system commands run theirs: the password from
    standard input only, refusals as one-line messages with exit status 1."""
    from his_pacs_ws.admin import _system_command
    from his_pacs_ws.services.operators import OperatorCommandError
    from his_pacs_ws.services.systems import SystemCommandError

    def refusals_as_messages(context, password):
        try:
            work(context, password)
        except OperatorCommandError as err:
            raise SystemCommandError(str(err)) from None

    return _system_command(settings, refusals_as_messages, done, needs_password=needs_password, args=args)


def cmd_add(settings: Settings, args) -> int:
    from his_pacs_ws.services.operators import add_operator

    return _run(settings, lambda context, password: add_operator(context.uow(), args.name, args.role, password),
                f"operator {args.name} added ({args.role})", args, needs_password=True)


def cmd_password(settings: Settings, args) -> int:
    from his_pacs_ws.services.operators import set_password

    return _run(settings, lambda context, password: set_password(context.uow(), args.name, password),
                f"password of {args.name} set; the operator's sessions have ended", args, needs_password=True)


def cmd_enable(settings: Settings, args) -> int:
    from his_pacs_ws.services.operators import set_enabled

    return _run(settings, lambda context, _: set_enabled(context.uow(), args.name, args.enabled),
                f"operator {args.name} {'enabled' if args.enabled else 'disabled'}")


def cmd_list(settings: Settings, args) -> int:
    from his_pacs_ws.admin import _database
    from his_pacs_ws.services.operators import list_operators

    with _database(settings) as context:
        rows = list_operators(context.uow())
    print(table(("Name", "Role", "Enabled", "Last sign-in", "Added"), [
        (o["name"], o["role"], "yes" if o["enabled"] else "NO", when(o["last_sign_in_at"], settings.tz),
         when(o["created_at"], settings.tz)) for o in rows]))
    return 0

"""Shared code of the QA scripts: zeep clients built from the WSDL snapshots, with a
WS-Security UsernameToken; argument helpers, readable printing of results and SOAP faults.
Only zeep and the standard library."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import uuid
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import zeep
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault
from zeep.helpers import serialize_object
from zeep.wsse.username import UsernameToken

TNS = "urn:his-pacs-ws:v1"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_WSDL_DIR = Path(__file__).resolve().parent.parent / "wsdl"
SERVICES = {"his": "HisService", "pacs": "PacsService"}
# The variables holding each side's system name and password.
CREDENTIAL_ENV = {"his": ("HIS_PACS_HIS_USER", "HIS_PACS_HIS_PASSWORD"),
                  "pacs": ("HIS_PACS_PACS_USER", "HIS_PACS_PACS_PASSWORD")}
PASSWORD_TYPES = ("digest", "text")

# A terminal that cannot show Chinese must not crash the script halfway through a run.
for _stream in (sys.stdout, sys.stderr):
    if hasattr(_stream, "reconfigure"):
        _stream.reconfigure(errors="backslashreplace")


def connect(name: str, url: str = DEFAULT_URL, wsdl_dir: Path | str = DEFAULT_WSDL_DIR,
            wsse: UsernameToken | None = None):
    """The `his` or `pacs` service proxy: local WSDL, address overridden to URL/ws/<name>;
    every call carries `wsse`."""
    client = zeep.Client(str(Path(wsdl_dir) / f"{name}.wsdl"), wsse=wsse)
    return client.create_service(f"{{{TNS}}}{SERVICES[name]}", f"{url.rstrip('/')}/ws/{name}")


def new_id(prefix: str = "") -> str:
    """A unique business key or MessageId (fits the contract's 64 characters)."""
    return prefix + uuid.uuid4().hex


def now() -> datetime:
    """The current time in whole seconds with the local offset, as the service answers
    (2026-11-26T09:30:00+08:00): the default of every time a script sends."""
    return datetime.now().astimezone().replace(microsecond=0)


def fault_code(fault: Fault) -> str:
    """zeep reports 'soap11env:Client.ApplicationLocked'; the contract code follows the last dot."""
    return (fault.code or "").rsplit(".", 1)[-1]


def fault_detail(fault: Fault) -> dict:
    """The ServiceFault detail as {'Code', 'Message', 'Retryable'} (empty if absent)."""
    node = fault.detail.find(f"{{{TNS}}}ServiceFault") if fault.detail is not None else None
    if node is None:
        return {}
    return {child.tag.rsplit("}", 1)[-1]: child.text for child in node}


# ---- argument types --------------------------------------------------------------------

def decimal_arg(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None


def datetime_arg(text: str) -> datetime:
    """ISO 8601; without an offset the server reads it in the hospital time zone."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date-time: {text!r}") from None


def staff_arg(text: str) -> dict:
    """`CODE:NAME` as a Staff."""
    code, sep, name = text.partition(":")
    if not sep or not code or not name:
        raise argparse.ArgumentTypeError(f"expected CODE:NAME, got {text!r}")
    return {"Code": code, "Name": name}


def item_arg(text: str) -> dict:
    """`CODE:NAME:UNIT_PRICE[:QUANTITY]` as an ApplicationItem (quantity defaults to 1)."""
    parts = text.split(":")
    if len(parts) not in (3, 4) or not all(parts):
        raise argparse.ArgumentTypeError(f"expected CODE:NAME:PRICE[:QUANTITY], got {text!r}")
    return {"ItemCode": parts[0], "ItemName": parts[1], "UnitPrice": decimal_arg(parts[2]),
            "Quantity": decimal_arg(parts[3]) if len(parts) == 4 else Decimal(1)}


def deployment_parser(with_defaults: bool = True) -> argparse.ArgumentParser:
    """--url and --wsdl-dir. Subcommands take them without defaults (SUPPRESS), so they may
    come before or after the subcommand name."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--url", default=DEFAULT_URL if with_defaults else argparse.SUPPRESS,
                        help=f"base URL of the deployment (default {DEFAULT_URL})")
    parent.add_argument("--wsdl-dir", default=str(DEFAULT_WSDL_DIR) if with_defaults else argparse.SUPPRESS,
                        help="folder holding his.wsdl and pacs.wsdl (default: the repo's wsdl/)")
    return parent


def base_parser(description: str, *parents: argparse.ArgumentParser) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(description=description, parents=[deployment_parser(), *parents])


def credentials_parser(*sides: str, prefixed: bool = False, with_defaults: bool = True) -> argparse.ArgumentParser:
    """--user and --password of each side (--his-user ... when `prefixed`), defaulting to the
    side's environment variables; --password-type and --no-auth. Subcommands take them without
    defaults, as deployment_parser."""
    def default(value):
        return value if with_defaults else argparse.SUPPRESS

    parent = argparse.ArgumentParser(add_help=False)
    for side in sides:
        user_env, password_env = CREDENTIAL_ENV[side]
        prefix = f"{side}-" if prefixed else ""
        parent.add_argument(f"--{prefix}user", dest=f"{side}_user", metavar="NAME",
                            default=default(os.environ.get(user_env)),
                            help=f"name of the {side.upper()} system (default ${user_env})")
        parent.add_argument(f"--{prefix}password", dest=f"{side}_password", metavar="PASSWORD",
                            default=default(os.environ.get(password_env)),
                            help=f"its password (default ${password_env}; prefer the variable: "
                                 "a command line shows in the process list and the shell history)")
    parent.add_argument("--password-type", choices=PASSWORD_TYPES, default=default("digest"),
                        help="UsernameToken PasswordDigest or PasswordText (default digest)")
    parent.add_argument("--no-auth", action="store_true", default=default(False),
                        help="send no credentials: only for a demo server started with HIS_PACS_AUTH=off")
    return parent


def token(user: str, password: str, password_type: str = "digest", **fixed) -> UsernameToken:
    """A UsernameToken; `fixed` may hold the `nonce` and `created` to send on every call."""
    return UsernameToken(user, password, use_digest=password_type == "digest", **fixed)


def login(args, *sides: str, prefixed: bool = False) -> list[UsernameToken | None]:
    """The token of each side from credentials_parser's options (None with --no-auth). When a
    user or password is missing, says what is needed and exits with status 2: no call is sent."""
    if args.no_auth:
        return [None] * len(sides)
    missing = [side for side in sides if not (getattr(args, f"{side}_user") and getattr(args, f"{side}_password"))]
    if missing:
        lines = ["credentials needed: every call must name the calling system and give its password."]
        for side in missing:
            user_env, password_env = CREDENTIAL_ENV[side]
            prefix = f"{side}-" if prefixed else ""
            lines.append(f"  {side.upper()} system: set {user_env} and {password_env} "
                         f"(or give --{prefix}user and --{prefix}password).")
        lines.append("  Only a demo server started with HIS_PACS_AUTH=off takes calls without them (--no-auth).")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2)
    return [token(getattr(args, f"{side}_user"), getattr(args, f"{side}_password"), args.password_type)
            for side in sides]


AUTH_HINT = ("  The deployment refused these credentials. Check the system name and password against the\n"
             "  server's `his-pacs-ws systems list` (a new password: `systems set-password NAME --password-stdin`),\n"
             "  that the system is enabled and of this side's role, and that this machine's clock is within\n"
             "  5 minutes of the server's. The server's log says which it was.")


def check_login(service, side: str, user: str | None) -> None:
    """One Ping with the side's credentials before anything else: wrong credentials are
    said once, with what to check, instead of failing every call after. Exits with 2."""
    try:
        service.Ping()
    except Fault as fault:
        if fault_code(fault) not in ("AuthenticationFailed", "AccessDenied"):
            raise
        print(f"{side.upper()} system {user or '(none)'}: {fault_code(fault)}", file=sys.stderr)
        print(AUTH_HINT if fault_code(fault) == "AuthenticationFailed" else
              f"  {user} is not a {side.upper()} system: use one added with --role {side.upper()}", file=sys.stderr)
        raise SystemExit(2) from None


def run_main(main) -> None:
    """The scripts' entry point: the exit status of ``main``; a reader that stops early
    (`| head`) or Ctrl-C ends the script quietly, without a traceback."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        code = 0
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)


def message_id_parser() -> argparse.ArgumentParser:
    """Parent parser of the state-changing subcommands."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--message-id", help="MessageId to send (default: a new uuid); "
                        "repeat one to demonstrate a retry")
    return parent


CRITICAL_STATUSES = ("RAISED", "RECEIVED", "HANDLED", "REVOKED")


def critical_values_parser() -> argparse.ArgumentParser:
    """Parent parser of the critical-values subcommands: QueryCriticalValues is the same on both services."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--status", action="append", choices=CRITICAL_STATUSES, default=[],
                        help="repeatable (default: all)")
    parent.add_argument("--department", help="the patient's department code")
    parent.add_argument("--patient-id")
    parent.add_argument("--application-no")
    parent.add_argument("--from", dest="from_", type=datetime_arg, help="reported from (ISO date-time)")
    parent.add_argument("--to", type=datetime_arg, help="reported before (ISO date-time)")
    parent.add_argument("--overdue-only", action="store_true", help="only values not received by their deadline")
    return parent


def critical_values_request(args) -> dict:
    request = {"DepartmentCode": args.department, "PatientId": args.patient_id,
               "ApplicationNo": args.application_no, "From": args.from_, "To": args.to,
               "OverdueOnly": True if args.overdue_only else None}
    if args.status:
        request["Statuses"] = {"Status": args.status}
    return {k: v for k, v in request.items() if v is not None}


def announce(request: dict, flags: dict[str, tuple | list[tuple]]) -> None:
    """Print the MessageId and the generated values a retry must repeat to be the same request.
    `flags` maps a flag to the path of its value in the request (keys and list indexes), or to
    a list of paths of which the first the request holds counts; a value left out is not printed."""
    def pick(paths):
        for path in paths if isinstance(paths, list) else [paths]:
            value = request
            try:
                for key in path:
                    value = value[key]
            except (KeyError, IndexError):
                continue
            return value.isoformat() if isinstance(value, datetime) else value
        return None

    values = {flag: pick(paths) for flag, paths in flags.items()}
    again = "".join(f" {flag} {shlex.quote(str(value))}" for flag, value in values.items() if value is not None)
    print(f"MessageId: {request['MessageId']}")
    print(f"(to retry the same request: {retry_command(request['MessageId'], list(values))}{again})")


SECRET_FLAGS = ("--password", "--his-password", "--pacs-password")


def retry_command(message_id: str, generated: list[str], argv: list[str] | None = None) -> str:
    """This very command line with the MessageId and the generated values fixed, less any
    password (the variables give it) and any earlier --message-id or generated flag."""
    argv = list(sys.argv if argv is None else argv)
    dropped = set(SECRET_FLAGS) | {"--message-id", *generated}
    kept, skip = [], False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in dropped:
            skip = "=" not in arg
            continue
        kept.append(arg)
    return shlex.join([Path(argv[0]).name if argv else "script", *kept, "--message-id", message_id])


# ---- output ----------------------------------------------------------------------------

def plain(value):
    """zeep objects as dicts and lists, empty fields dropped, list wrappers collapsed."""
    value = serialize_object(value)
    if isinstance(value, dict):
        # A list wrapper: `{"Charges": {"ChargeLine": [...]}}` reads better as `{"Charges": [...]}`
        if len(value) == 1 and isinstance(next(iter(value.values())), list):
            return plain(next(iter(value.values())))
        return {k: plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def scalar(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def render(value, indent: int = 0) -> list[str]:
    """A YAML-like rendering of plain() output."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{key}:")
                lines.extend(render(item, indent + 1))
            else:
                lines.append(f"{pad}{key}: {scalar(item) if item not in ({}, []) else '(none)'}")
    elif isinstance(value, list):
        for item in value:
            sub = render(item, indent + 1)
            lines.append(f"{pad}- {sub[0].lstrip()}" if sub else f"{pad}-")
            lines.extend(sub[1:])
    else:
        lines.append(pad + scalar(value))
    return lines


def show(result) -> None:
    """zeep returns None for a result that is only an empty list (QueryReports finding nothing)."""
    print("(none)" if result is None else "\n".join(render(plain(result))) or "(empty)")


def call(operation, request: dict | None = None, printer=show) -> int:
    """Send one request, print the result (with `printer`) or the fault; the process exit code."""
    try:
        result = operation(request=request) if request is not None else operation()
    except Fault as fault:
        detail = fault_detail(fault)
        print(f"FAULT {fault_code(fault)} (faultcode {fault.code})", file=sys.stderr)
        if detail:
            print(f"  Code: {detail.get('Code')}\n  Message: {detail.get('Message')}\n"
                  f"  Retryable: {detail.get('Retryable')}", file=sys.stderr)
        else:
            print(f"  {fault.message}", file=sys.stderr)
        if fault_code(fault) == "AuthenticationFailed":
            print(AUTH_HINT, file=sys.stderr)
        return 1
    except (ZeepError, OSError) as error:
        print(f"ERROR {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    printer(result)
    return 0

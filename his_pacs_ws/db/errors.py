"""Database problems as one line an operator can act on, instead of a driver's traceback."""

from __future__ import annotations

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

URL_FORM = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"

# (what the driver says, what to do about it)
_HINTS = (
    ("password authentication failed", "check the user and password; in a URL a password with @ : / # % "
                                       "must be percent-encoded (@ is %40), or keep it in ~/.pgpass instead"),
    ("no password supplied", "give the password in the URL, in PGPASSWORD or in ~/.pgpass"),
    ("connection refused", "is PostgreSQL running there and listening on that address and port "
                           "(listen_addresses, pg_hba.conf)?"),
    ("could not translate host name", "unknown host; if the password holds @ : / or #, percent-encode it "
                                      "(@ is %40, # is %23)"),
    ("does not exist", "create it first: createuser -P hisws; createdb -O hisws his_pacs (README: your own server)"),
    ("permission denied for schema public", "the user must own the database (createdb -O USER) or be granted "
                                            "CREATE ON SCHEMA public"),
    ("permission denied", "the user lacks a privilege: let it own the database (createdb -O USER)"),
    ("timeout expired", "the server did not answer in time: is the address right, and is it up?"),
    ("no pg_hba.conf entry", "allow this host and user in the server's pg_hba.conf"),
    ("too many clients", "PostgreSQL's max_connections is used up: see the README on pool sizing"),
    ("the database system is starting up", "retry in a moment"),
    ("the database system is shutting down", "the server is stopping; retry when it is back"),
)


def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(an unreadable URL)"


def url_problem(url: str) -> str | None:
    """A URL mistake that is sure to fail, said before connecting."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"the database URL is not of the form {URL_FORM}"
    if parsed.drivername.split("+")[0] not in ("postgres", "postgresql"):
        return f"his-pacs-ws runs on PostgreSQL; the database URL is a {parsed.drivername} URL ({URL_FORM})"
    if parsed.host and any(ch in parsed.host for ch in "@#/?"):
        return ("the database URL's host reads as " f"{parsed.host!r}: a password with @ : / # ? or % must be "
                "percent-encoded (@ is %40, # is %23, / is %2F), or kept in ~/.pgpass")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        return f"the database URL's port {parsed.port} is not between 1 and 65535"
    return None


def describe(exc: BaseException, url: str | None = None) -> str | None:
    """One line for a database error, or None if ``exc`` is not one."""
    if not isinstance(exc, DBAPIError):
        return None
    text = " ".join(str(exc.orig).split()) if exc.orig is not None else type(exc).__name__
    # psycopg prefixes the reason with where it tried; keep the reason
    reason = text
    for marker in ("FATAL:", "ERROR:"):
        if marker in reason:
            reason = reason.split(marker, 1)[1].strip()
    reason = reason.removeprefix("connection failed:").strip()
    hint = next((hint for needle, hint in _HINTS if needle in text.lower()), None)
    where = f"the database {safe_url(url)}" if url else "the database"
    return f"{where}: {reason}" + (f" ({hint})" if hint else "")

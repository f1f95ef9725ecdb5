"""Which secret key a command uses, checked against the database before anything is sealed
with it: one command run in the wrong directory must not lock a partner out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from his_pacs_ws.config import Settings
from his_pacs_ws.db.engine import UnitOfWork
from his_pacs_ws.services.secrets import KEY_FILE, SecretBox, SecretKeyError, load_key
from his_pacs_ws.services.systems import unreadable_secrets

USE_THE_SERVERS_KEY = ("use the key the servers use: run in the server's data dir or pass it with --data-dir "
                       "(HIS_PACS_DATA_DIR), or set HIS_PACS_SECRET_KEY")


@dataclass(frozen=True)
class Key:
    box: SecretBox
    source: str  # where it came from, for the operator
    created: bool


def key_path(settings: Settings) -> Path:
    return Path(settings.data_dir).expanduser().resolve() / KEY_FILE


def open_key(settings: Settings, uow: UnitOfWork, *, create: bool) -> Key:
    """The key for the partner passwords. A new key file is made only for a database that
    holds no password yet; a key that cannot open the stored passwords is refused."""
    path = key_path(settings)
    source = "HIS_PACS_SECRET_KEY" if settings.secret_key else str(path)
    if settings.secret_key or path.exists():
        box = SecretBox(load_key(settings.secret_key, settings.data_dir, create=False))
        if names := unreadable_secrets(uow, box):
            raise SecretKeyError(f"the secret key from {source} cannot open the passwords of {', '.join(names)}: "
                                 f"it is not the key they were added with; {USE_THE_SERVERS_KEY}")
        return Key(box, source, created=False)
    with uow:
        count = len(uow.systems.all())
    if count:
        raise SecretKeyError(f"no secret key (HIS_PACS_SECRET_KEY is not set and {path} does not exist), but the "
                             f"database holds the passwords of {count} system{'s' if count > 1 else ''}, sealed "
                             f"with a key kept elsewhere; {USE_THE_SERVERS_KEY}")
    if not create:
        raise SecretKeyError(f"no secret key: HIS_PACS_SECRET_KEY is not set and {path} does not exist")
    return Key(SecretBox(load_key(None, settings.data_dir, create=True)), source, created=True)


def created_notice(key: Key) -> str:
    return (f"created a new secret key {key.source} for the partner passwords: back it up apart from the "
            "database, and give every server on this database the same key (this file, or "
            "HIS_PACS_SECRET_KEY)")

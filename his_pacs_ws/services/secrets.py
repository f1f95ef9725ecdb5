"""Partner secrets at rest: AES-256-GCM, with a key kept apart from the database.

PasswordDigest needs each partner's password on the server, so a one-way hash cannot be
stored. The secrets are encrypted instead; the key comes from HIS_PACS_SECRET_KEY or a
key file (0600) beside the embedded database, so a copy of the database alone does not
reveal them.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_FILE = "secret.key"


class SecretKeyError(RuntimeError):
    """The key is missing or malformed."""


class SecretBox:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise SecretKeyError("the secret key must be 32 bytes (base64 encoded: 44 characters)")
        self._aead = AESGCM(key)

    def seal(self, secret: str, name: str) -> bytes:
        nonce = os.urandom(12)
        # the system's name is bound in: a ciphertext copied to another row does not open
        return nonce + self._aead.encrypt(nonce, secret.encode("utf-8"), name.encode("utf-8"))

    def open(self, sealed: bytes, name: str) -> str:
        return self._aead.decrypt(sealed[:12], sealed[12:], name.encode("utf-8")).decode("utf-8")


def load_key(configured: str | None, data_dir: Path, *, create: bool) -> bytes:
    """The key from the setting, else from the key file, created on first use if asked."""
    if configured:
        try:
            return base64.b64decode(configured, validate=True)
        except ValueError:
            raise SecretKeyError("HIS_PACS_SECRET_KEY is not base64") from None
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        if not create:
            raise SecretKeyError(f"no secret key: set HIS_PACS_SECRET_KEY or keep {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode("ascii") + "\n")
    return base64.b64decode(path.read_text().strip())


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")

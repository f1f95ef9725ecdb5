"""Passwords of people (console operators): scrypt, slow on purpose, salted, self-describing.

Partner systems' secrets are different: WS-Security PasswordDigest needs the plain secret,
so those are encrypted (services/secrets.py), not hashed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

# 2**15 x 8 x 128 bytes = 32 MiB and about 0.1 s a check: cheap for a sign-in, dear for a guesser.
N, R, P = 2 ** 15, 8, 1
_MAXMEM = 64 * 1024 * 1024
MIN_LENGTH = 12


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=N, r=R, p=P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(password.encode("utf-8"), salt=base64.b64decode(salt), n=int(n), r=int(r),
                                p=int(p), maxmem=_MAXMEM, dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# Checked against when the name is unknown, so that a wrong name costs what a wrong password does.
DUMMY_HASH = "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="

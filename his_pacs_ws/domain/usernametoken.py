"""WS-Security UsernameToken 1.0 checks: freshness and the password, PasswordText or
PasswordDigest = Base64(SHA-1(nonce + created + password))."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

PASSWORD_TEXT = "PasswordText"
PASSWORD_DIGEST = "PasswordDigest"


@dataclass(frozen=True)
class Token:
    username: str
    password: str
    password_type: str = PASSWORD_TEXT
    nonce: bytes | None = None
    created_text: str | None = None  # as sent: the digest covers these exact characters
    created: datetime | None = None
    expires: datetime | None = None  # wsu:Timestamp/wsu:Expires


class TokenRefused(Exception):
    """Why a token is refused; for the server log only, never the caller."""


def check_fresh(token: Token, now: datetime, window: timedelta) -> None:
    if token.password_type == PASSWORD_DIGEST and (token.nonce is None or token.created is None):
        raise TokenRefused("a digest token needs Nonce and Created")
    if token.created is not None and abs(now - token.created) > window:
        raise TokenRefused("Created is outside the allowed window")
    if token.expires is not None and now > token.expires:
        raise TokenRefused("the Timestamp has expired")


def digest(nonce: bytes, created_text: str, password: str) -> str:
    raw = hashlib.sha1(nonce + created_text.encode("utf-8") + password.encode("utf-8")).digest()
    return base64.b64encode(raw).decode("ascii")


def check_password(token: Token, secret: str) -> None:
    if token.password_type == PASSWORD_DIGEST:
        if token.nonce is None or token.created_text is None:  # whether or not check_fresh ran
            raise TokenRefused("a digest token needs Nonce and Created")
        expected = digest(token.nonce, token.created_text, secret)
    elif token.password_type == PASSWORD_TEXT:
        expected = secret
    else:
        raise TokenRefused("unknown password type")
    if not hmac.compare_digest(expected.encode("utf-8"), token.password.encode("utf-8")):
        raise TokenRefused("wrong password")

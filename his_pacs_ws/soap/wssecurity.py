"""Reading the WS-Security header (OASIS WSS 1.0 UsernameToken profile) from an envelope."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from his_pacs_ws.domain.usernametoken import PASSWORD_DIGEST, PASSWORD_TEXT, Token

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"


class MalformedToken(ValueError):
    """The header is there but cannot be read as a UsernameToken."""


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise MalformedToken("wsu times carry an offset (UTC, 'Z')")
    return value


def _nonce_bytes(text: str) -> bytes:
    """A Nonce is base64 (the profile's default EncodingType); some clients (suds) send
    plain text instead, which is taken as its bytes."""
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        return text.encode("utf-8")


def read_token(root) -> Token | None:
    """The UsernameToken of the envelope, None if there is none."""
    security = root.find(f"{{{SOAP_ENV}}}Header/{{{WSSE}}}Security")
    if security is None:
        return None
    token = security.find(f"{{{WSSE}}}UsernameToken")
    if token is None:
        return None
    try:
        username = (token.findtext(f"{{{WSSE}}}Username") or "").strip()
        password = token.find(f"{{{WSSE}}}Password")
        if not username or password is None:
            raise MalformedToken("Username and Password are required")
        kind = (password.get("Type") or f"{PROFILE}#{PASSWORD_TEXT}").rsplit("#", 1)[-1]
        if kind not in (PASSWORD_TEXT, PASSWORD_DIGEST):
            raise MalformedToken("unknown password type")
        nonce_text = token.findtext(f"{{{WSSE}}}Nonce")
        nonce = _nonce_bytes(nonce_text.strip()) if nonce_text else None
        created_text = token.findtext(f"{{{WSU}}}Created")
        timestamp = security.find(f"{{{WSU}}}Timestamp")
        expires = _time(timestamp.findtext(f"{{{WSU}}}Expires")) if timestamp is not None else None
        return Token(
            username=username[:64], password=password.text or "", password_type=kind, nonce=nonce,
            created_text=created_text.strip() if created_text else None, created=_time(created_text),
            expires=expires,
        )
    except (ValueError, binascii.Error) as err:
        raise MalformedToken(str(err)) from None

"""The password check stands on its own: a digest token without its nonce or creation time
is refused even where the freshness check was not run first."""

from __future__ import annotations

import pytest

from his_pacs_ws.domain.usernametoken import PASSWORD_DIGEST, Token, TokenRefused, check_password, digest


def test_a_digest_token_without_nonce_or_created_is_refused():
    for nonce, created in ((None, "2026-11-26T01:00:00Z"), (b"n" * 16, None)):
        token = Token("his", "x", PASSWORD_DIGEST, nonce=nonce, created_text=created)
        with pytest.raises(TokenRefused, match="needs Nonce and Created"):
            check_password(token, "secret")


def test_a_complete_digest_token_is_checked():
    nonce, created = b"n" * 16, "2026-11-26T01:00:00Z"
    check_password(Token("his", digest(nonce, created, "secret"), PASSWORD_DIGEST, nonce, created), "secret")
    with pytest.raises(TokenRefused, match="wrong password"):
        check_password(Token("his", digest(nonce, created, "other"), PASSWORD_DIGEST, nonce, created), "secret")

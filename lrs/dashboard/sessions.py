"""Signed-in people: a sealed, HTTP-only session cookie and a CSRF token for every form.

The cookie holds the credential's key, a fingerprint of its secret's hash, the CSRF token and an
expiry, sealed with AES-GCM under a key derived from the server key (LRS_SECRET_KEY): nobody can
read, forge or extend it. Each request looks the credential up again, so revoking it, or issuing
it a new secret, ends its sessions at once. The sign-in form, before any session, carries a
token that must match a cookie of its own (double submit), and every POST must come from a page
of this origin (Origin, when the browser sends it); the cookies are SameSite=Strict.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lrs.auth import Principal
from lrs.credentials import CredentialInfo

SIGN_IN_COOKIE_LIFETIME = 3600  # seconds: the sign-in form's own token


@dataclass(frozen=True, slots=True)
class Session:
    key: str
    secret_check: str
    csrf: str
    expires: float


def secret_check(info: CredentialInfo) -> str:
    """Changes when the credential gets a new secret, ending sessions signed in with the old."""
    return hashlib.sha256(info.secret_hash.encode()).hexdigest()[:32]


class SessionSeal:
    """Seals sessions into cookie values and opens them again."""

    def __init__(self, server_key: bytes, lifetime_seconds: float) -> None:
        derived = hmac.new(server_key, b"lrs dashboard session cookie", hashlib.sha256).digest()
        self._aead = AESGCM(derived)
        self.lifetime = lifetime_seconds

    def issue(self, info: CredentialInfo, now: float | None = None) -> tuple[str, Session]:
        session = Session(info.key, secret_check(info), secrets.token_urlsafe(24),
                          (now or time.time()) + self.lifetime)
        payload = orjson.dumps([session.key, session.secret_check, session.csrf, session.expires])
        nonce = os.urandom(12)
        sealed = nonce + self._aead.encrypt(nonce, payload, b"session")
        return base64.urlsafe_b64encode(sealed).decode().rstrip("="), session

    def open(self, value: str | None, now: float | None = None) -> Session | None:
        """The session in a cookie value, or None when absent, tampered with or expired."""
        if not value or len(value) > 4096:
            return None
        try:
            sealed = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            key, check, csrf, expires = orjson.loads(
                self._aead.decrypt(sealed[:12], sealed[12:], b"session"))
        except (ValueError, InvalidTag, TypeError):
            return None
        if not isinstance(expires, (int, float)) or expires < (now or time.time()):
            return None
        return Session(str(key), str(check), str(csrf), float(expires))


def principal_of(session: Session, info: CredentialInfo | None, home_page: str) -> Principal | None:
    """The credential a session acts for, if it is still active with the same secret."""
    if info is None or info.revoked or not hmac.compare_digest(secret_check(info), session.secret_check):
        return None
    return Principal.of(info, home_page)


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))

"""HTTP Basic credentials and xAPI scopes (Communication 4.0)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import multiprocessing
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lrs.application import LearningRecordStore
from lrs.config import DEFAULT_STORE
from lrs.credentials import CredentialInfo, hash_secret, verify_secret
from lrs.errors import Forbidden, Unauthorized
from schemas.actor import Account, Agent

READ_SCOPES = frozenset({"statements/read", "all/read", "all"})
WRITE_SCOPES = frozenset({"statements/write", "all"})
MINE_SCOPE = "statements/read/mine"
STATE_WRITE = frozenset({"state", "all"})
STATE_READ = STATE_WRITE | {"all/read"}
PROFILE_WRITE = frozenset({"profile", "all"})
PROFILE_READ = PROFILE_WRITE | {"all/read"}
DEFINITIONS_READ = frozenset({"all", "all/read", "statements/read", "define", "profile", "state"})
# The learner and class views (/api/*, the dashboard): every learner with these, or the classes
# or the one learner a teacher's or learner's credential is bound to.
ANALYTICS_READ = frozenset({"all", "all/read", "statements/read"})
TEACHER, LEARNER = "teacher", "learner"
# The Person object lists the names every credential's statements gave an agent, so it is read
# with the scopes that read any statement (Communication 2.4: SHOULD need explicit permission).
PERSON_READ = READ_SCOPES


@dataclass(frozen=True, slots=True)
class Principal:
    """The credential a request acts for, and the authority its statements carry."""

    key: str
    name: str
    scopes: frozenset[str]
    home_page: str
    classes: frozenset[str] = frozenset()  # a teacher's
    learner: str | None = None  # a learner's
    store: str = DEFAULT_STORE  # the store whose data it reads and writes, and no other
    reads_stores: frozenset[str] = frozenset()  # a district's: other stores it may read
    authority: dict[str, Any] = field(init=False)
    authority_agent: Agent = field(init=False)

    def __post_init__(self) -> None:
        authority = {"objectType": "Agent", "name": self.name,
                     "account": {"homePage": self.home_page, "name": self.key}}
        object.__setattr__(self, "authority", authority)
        object.__setattr__(self, "authority_agent", Agent(
            objectType="Agent", name=self.name,
            account=Account(homePage=self.home_page, name=self.key)))

    def require_write(self) -> None:
        if not self.scopes & WRITE_SCOPES:
            raise Forbidden("this credential may not write statements"
                            " (needs scope statements/write or all)")

    @property
    def can_define(self) -> bool:
        return bool(self.scopes & {"define", "all"})

    @property
    def can_void_any(self) -> bool:
        """Voiding is the authority's act (Data 2.3.2): another credential's statements, or
        ones this LRS does not hold yet, only with scope all."""
        return "all" in self.scopes

    def require_any(self, scopes: frozenset[str], action: str) -> None:
        if not self.scopes & scopes:
            raise Forbidden(f"this credential may not {action} (needs scope"
                            f" {' or '.join(sorted(scopes))})")

    @classmethod
    def of(cls, info: CredentialInfo, home_page: str) -> Principal:
        return cls(info.key, info.name, frozenset(info.scopes), home_page,
                   frozenset(info.classes), info.learner, info.store, frozenset(info.reads_stores))

    def view_scope(self) -> ViewScope:
        """Which learners' views this credential may read, or Forbidden if none."""
        if self.scopes & ANALYTICS_READ:
            return ViewScope(every=True)
        if TEACHER in self.scopes and self.classes:
            return ViewScope(every=False, classes=self.classes)
        if LEARNER in self.scopes and self.learner:
            return ViewScope(every=False, learner=self.learner)
        raise Forbidden("this credential may not read learner analytics (needs scope"
                        f" {' or '.join(sorted(ANALYTICS_READ | {TEACHER, LEARNER}))})")

    def read_filter(self) -> str | None:
        """None to read every statement, or the key whose statements alone may be read."""
        if self.scopes & READ_SCOPES:
            return None
        if MINE_SCOPE in self.scopes:
            return self.key
        raise Forbidden("this credential may not read statements (needs scope statements/read,"
                        " statements/read/mine, all/read or all)")


@dataclass(frozen=True, slots=True)
class ViewScope:
    """The learners a credential may see in the views: every one, those of some classes (a
    teacher), or one (a learner). Sent to the views process with each guarded query."""

    every: bool
    classes: frozenset[str] = frozenset()
    learner: str | None = None

    def require_class(self, class_id: str) -> None:
        """A class's views: every class, or a teacher's own (403 otherwise, whether the class
        exists or not, so a refusal tells nothing)."""
        if not self.every and class_id not in self.classes:
            raise Forbidden(f"this credential may not see class '{_shown(class_id)}' (a teacher"
                            " sees the classes it is bound to; a learner sees no class)")

    def may_see(self, learner: str, classes: set[str]) -> bool:
        """Whether a learner, in these classes, is visible."""
        if self.every:
            return True
        if self.learner is not None:
            return learner == self.learner
        return bool(self.classes & classes)

    def refuse_learner(self, learner: str) -> Forbidden:
        return Forbidden(f"this credential may not see learner '{_shown(learner)}' (a teacher"
                         " sees the learners of its classes, a learner only themself)")


def _shown(value: str) -> str:
    return value[:80] if value.isprintable() else "(not printable)"


class CredentialChanges:
    """A count of credential changes made through the server, in memory that `lrs serve`'s
    worker processes share: the worker that revokes one bumps it, and every worker drops its
    remembered verifications when it moves (lrs/api/workers.py)."""

    def __init__(self, shared: Any = None) -> None:
        self.shared = shared if shared is not None else multiprocessing.RawValue("q", 0)

    def bump(self) -> None:
        self.shared.value += 1  # a lost race still moves it: every worker sees a new value

    @property
    def count(self) -> int:
        return int(self.shared.value)


class Authenticator:
    """Checks Basic credentials; a verified secret is remembered briefly, since scrypt is slow."""

    def __init__(self, app: LearningRecordStore, home_page: str, ttl_seconds: float = 30.0,
                 changes: CredentialChanges | None = None) -> None:
        self.app = app
        self.home_page = home_page
        self.ttl = ttl_seconds
        self.changes = changes or CredentialChanges()
        self._seen = self.changes.count
        # A pair's principal until when, and the secret hash it was verified against.
        self._verified: dict[bytes, tuple[float, Principal, str]] = {}
        self._verifying: dict[bytes, threading.Lock] = {}  # one scrypt per pair at a time
        self._lock = threading.Lock()

    def forget(self) -> None:
        """Drop every remembered verification, in every worker of the server: a credential
        revoked through the server stops working at once (one revoked with the CLI, another
        process, within the time to live)."""
        self.changes.bump()
        with self._lock:
            self._verified.clear()

    def authenticate(self, authorization: str | None) -> Principal:
        return self.verify(*parse_basic(authorization))

    def recently_verified(self, key: str, secret: str,
                          fingerprint: bytes | None = None) -> Principal | None:
        """The credential if this very key and secret were verified within the TTL and no
        credential has changed since; None if they must be verified (without blocking).
        ``fingerprint``: theirs, when the caller has it already."""
        return self._unexpired(fingerprint or secret_fingerprint(key, secret))

    def verify(self, key: str, secret: str) -> Principal:
        """The credential for this key and secret, or Unauthorized.

        When a pair's TTL runs out, every request of it in flight used to run scrypt at once:
        each worker stalled for 100-200 ms every 30 s (the tail of document reads). Now one
        request verifies the pair while the others wait for its answer, and a pair verified
        before against the hash the credential still holds is not run through scrypt again:
        scrypt would answer the same. The credential itself is read afresh either way, so a
        revocation or a reissue by another process still takes effect within the TTL."""
        fingerprint = secret_fingerprint(key, secret)
        remembered = self._unexpired(fingerprint)
        if remembered is not None:
            return remembered
        with self._lock:
            if len(self._verifying) > 10_000:
                self._verifying.clear()
            turn = self._verifying.setdefault(fingerprint, threading.Lock())
        with turn:
            before = self._remembered(fingerprint)
            now = time.monotonic()
            if before is not None and before[0] > now:  # verified by the request before this one
                return before[1]
            info = self.app.credential(key)
            # An unknown or revoked key costs the same scrypt as a known one: answered at once,
            # it told an attacker which keys exist (1.4 ms against 43 ms).
            known = info is not None and not info.revoked
            stored = info.secret_hash if info is not None and known else _unknown_key_hash()
            checked_before = known and before is not None and before[2] == stored
            if not checked_before and (not verify_secret(secret, stored) or not known):
                raise Unauthorized("unknown key, wrong secret or revoked credential")
            assert info is not None
            principal = Principal.of(info, self.home_page)
            with self._lock:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[fingerprint] = (now + self.ttl, principal, stored)
            return principal

    def _unexpired(self, fingerprint: bytes) -> Principal | None:
        cached = self._remembered(fingerprint)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        return None

    def _remembered(self, fingerprint: bytes) -> tuple[float, Principal, str] | None:
        """What this pair was last verified as, expired or not; nothing once any credential
        changed through the server (in any worker) since."""
        with self._lock:
            if self.changes.count != self._seen:  # another worker revoked or reissued one
                self._seen = self.changes.count
                self._verified.clear()
            return self._verified.get(fingerprint)


class CredentialDirectory:
    """Credentials named by key alone, for transports that authenticate the sender themselves.

    Kafka producers are authenticated by the broker; a message header names the credential the
    producer acts for, and that credential's scopes and authority apply.
    """

    def __init__(self, app: LearningRecordStore, home_page: str, ttl_seconds: float = 30.0) -> None:
        self.app = app
        self.home_page = home_page
        self.ttl = ttl_seconds
        self._known: dict[str, tuple[float, Principal | None]] = {}

    def principal(self, key: str) -> Principal:
        now = time.monotonic()
        cached = self._known.get(key)
        if cached is None or cached[0] <= now:
            info = self.app.credential(key)
            found = None if info is None or info.revoked else Principal.of(info, self.home_page)
            cached = (now + self.ttl, found)
            self._known[key] = cached
        if cached[1] is None:
            raise Unauthorized(f"credential '{key}' is unknown or revoked")
        return cached[1]


@functools.cache
def _unknown_key_hash() -> str:
    return hash_secret(secrets.token_urlsafe(24))


def secret_fingerprint(key: str, secret: str) -> bytes:
    """A fast digest naming one key and secret pair in memory, never stored."""
    return hashlib.sha256(f"{key}\0{secret}".encode()).digest()


def parse_basic(authorization: str | None) -> tuple[str, str]:
    """The key and secret of an HTTP Basic Authorization header, or Unauthorized."""
    if not authorization:
        raise Unauthorized("this resource needs HTTP Basic credentials (Authorization header)")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        shown = scheme[:20] if scheme.isascii() and scheme.isprintable() else "(not ASCII)"
        raise Unauthorized(f"the Authorization scheme '{shown}' is not supported; use Basic")
    if not encoded.isascii():  # headers arrive as latin-1 text; base64 is ASCII (RFC 7617)
        raise Unauthorized("the Basic credentials must be ASCII: the base64 of 'key:secret'")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("the Basic credentials are not valid base64 of 'key:secret'") from None
    key, sep, secret = decoded.partition(":")
    if not sep or not key:
        raise Unauthorized("the Basic credentials must be 'key:secret'")
    return key, secret

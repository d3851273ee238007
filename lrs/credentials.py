"""Credentials: issued, reissued and revoked as events in the log (Communication 4.0)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.utils import get_topic

from lrs.domain import Credential, credential_id
from lrs.errors import BadRequest, NotFound

SCOPES = ("statements/write", "statements/read", "statements/read/mine", "all/read", "all",
          "state", "profile", "define", "teacher", "learner", "admin")
# Scopes of people rather than tools: a teacher is bound to classes (sees their learners' views
# only), a learner to one learner (sees their own views only). Neither reads statements.
TEACHER, LEARNER = "teacher", "learner"
MAX_BINDING_CHARS = 1024


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    key: str
    name: str
    scopes: tuple[str, ...]
    revoked: bool
    secret_hash: str
    classes: tuple[str, ...] = ()
    learner: str | None = None


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    actual = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(actual.hex(), digest)


class CredentialCommands(Application[UUID]):
    """The credential use cases of the LRS application."""

    def issue_credential(self, name: str, scopes: Sequence[str], key: str | None = None,
                         secret: str | None = None, classes: Sequence[str] = (),
                         learner: str | None = None) -> tuple[str, str]:
        """Issue (or reissue) a credential; a teacher's names its classes, a learner's its learner."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise BadRequest(f"unknown scopes {unknown or '(none given)'}; known: {', '.join(SCOPES)}")
        classes, learner = check_binding(scopes, classes, learner)
        key = key or secrets.token_hex(10)
        secret = secret or secrets.token_urlsafe(24)
        try:
            credential = self._credential(key)
        except AggregateNotFoundError:
            credential = Credential(id=credential_id(key), name=name, key=key,
                                    secret_hash=hash_secret(secret), scopes=list(scopes))
        else:
            credential.reissue(secret_hash=hash_secret(secret), scopes=list(scopes))
        if classes or learner:
            credential.bind(classes=classes, learner=learner)
        self.save(credential)
        return key, secret

    def ensure_credential(self, key: str, secret: str, scopes: Sequence[str], name: str) -> bool:
        """Create the credential, or keep it if it already has this secret and these scopes."""
        try:
            existing = self._credential(key)
        except AggregateNotFoundError:
            self.issue_credential(name, scopes, key, secret)
            return True
        if (not existing.revoked and existing.scopes == list(scopes)
                and verify_secret(secret, existing.secret_hash)):
            return False
        self.issue_credential(name, scopes, key, secret)
        return True

    def revoke_credential(self, key: str) -> None:
        try:
            credential = self._credential(key)
        except AggregateNotFoundError:
            raise NotFound(f"no credential with key '{key}'") from None
        if not credential.revoked:
            credential.revoke()
            self.save(credential)

    def credential(self, key: str) -> CredentialInfo | None:
        try:
            c = self._credential(key)
        except AggregateNotFoundError:
            return None
        return CredentialInfo(c.key, c.name, tuple(c.scopes), c.revoked, c.secret_hash,
                              tuple(getattr(c, "classes", ())), getattr(c, "learner", None))

    def credentials(self) -> list[CredentialInfo]:
        topic = get_topic(Credential.Issued)
        found: list[CredentialInfo] = []
        start = 1
        while True:
            page = self.recorder.select_notifications(start, 500, topics=[topic])
            for notification in page:
                info = self.credential(self.mapper.to_domain_event(notification).key)  # type: ignore[attr-defined]
                if info is not None:
                    found.append(info)
            if len(page) < 500:
                return found
            start = page[-1].id + 1

    def _credential(self, key: str) -> Credential:
        return cast(Credential, self.repository.get(credential_id(key)))


def check_binding(scopes: Sequence[str], classes: Sequence[str],
                  learner: str | None) -> tuple[list[str], str | None]:
    """The classes and learner a credential is bound to, or BadRequest naming the rule."""
    classes = sorted({c.strip() for c in classes if c.strip()})
    learner = learner_key(learner) if learner and learner.strip() else None
    for value in [*classes, *([learner] if learner else [])]:
        if len(value) > MAX_BINDING_CHARS or "\0" in value or not value.isprintable():
            raise BadRequest(f"'{value[:40]}': a class or learner must be printable text of at most"
                             f" {MAX_BINDING_CHARS} characters")
    if TEACHER in scopes and LEARNER in scopes:
        raise BadRequest("scopes: a credential is a teacher's or a learner's, not both")
    if TEACHER in scopes and not classes:
        raise BadRequest("scope teacher needs the classes the teacher may see (--classes)")
    if classes and TEACHER not in scopes:
        raise BadRequest("classes are given only to a credential with scope teacher")
    if LEARNER in scopes and not learner:
        raise BadRequest("scope learner needs the learner it belongs to (--learner, an IFI key such"
                         " as mbox:mailto:ada@example.org)")
    if learner and LEARNER not in scopes:
        raise BadRequest("a learner is given only to a credential with scope learner")
    return classes, learner


def learner_key(value: str) -> str:
    """A learner as the views key them: an IFI key as given, an email as its mbox key."""
    value = value.strip()
    if ":" in value:
        return value
    local, _, domain = value.partition("@")
    return f"mbox:mailto:{local}@{domain.lower()}"

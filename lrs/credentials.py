"""Credentials: issued, reissued and revoked as events in the log (Communication 4.0)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import get_topic

from lrs.catalogue import StoreCommands
from lrs.config import DEFAULT_STORE
from lrs.domain import Credential, credential_id
from lrs.errors import BadRequest, NotFound

SCOPES = ("statements/write", "statements/read", "statements/read/mine", "all/read", "all",
          "state", "profile", "define", "teacher", "learner", "admin")
# The deployment's administrators: create, list and archive stores and issue credentials in
# them. Only credentials of the `default` store may hold it.
ADMIN = "admin"
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
    store: str = DEFAULT_STORE
    reads_stores: tuple[str, ...] = ()  # a district's: other stores whose statements it may read


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=2**14, r=8, p=1)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    _, n, r, p, salt, digest = stored.split("$")
    actual = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(actual.hex(), digest)


class CredentialCommands(StoreCommands):
    """The credential use cases of the LRS application; a credential names its store, so
    credentials live beside the catalogue of stores, in `default`'s log."""

    def issue_credential(self, name: str, scopes: Sequence[str], key: str | None = None,
                         secret: str | None = None, classes: Sequence[str] = (),
                         learner: str | None = None, store: str = DEFAULT_STORE,
                         reads_stores: Sequence[str] = ()) -> tuple[str, str]:
        """Issue (or reissue) a credential in a store; a teacher's names its classes, a
        learner's its learner, a district's the other stores it may read."""
        unknown = [s for s in scopes if s not in SCOPES]
        if unknown or not scopes:
            raise BadRequest(f"unknown scopes {unknown or '(none given)'}; known: {', '.join(SCOPES)}")
        classes, learner = check_binding(scopes, classes, learner)
        reads = self._check_placement(scopes, store, reads_stores)
        key = key or secrets.token_hex(10)
        secret = secret or secrets.token_urlsafe(24)
        try:
            credential = self._credential(key)
        except AggregateNotFoundError:
            credential = Credential(id=credential_id(key), name=name, key=key,
                                    secret_hash=hash_secret(secret), scopes=list(scopes))
        else:
            if getattr(credential, "store", DEFAULT_STORE) != store:
                raise BadRequest(f"key '{key}': the key of a credential of another store; a"
                                 " credential stays in its store, so choose another key")
            credential.reissue(secret_hash=hash_secret(secret), scopes=list(scopes))
        if classes or learner:
            credential.bind(classes=classes, learner=learner)
        if store != DEFAULT_STORE or reads or getattr(credential, "reads_stores", []):
            credential.place(store=store, reads_stores=reads)
        self.save(credential)
        return key, secret

    def _check_placement(self, scopes: Sequence[str], store: str,
                         reads_stores: Sequence[str]) -> list[str]:
        named = sorted({s.strip() for s in reads_stores if s.strip()} - {store})
        for name in [store, *named]:
            found = self.store_info(name)
            if found is None:
                raise BadRequest(f"store '{name[:40]}': no such store (lrs stores list)")
            if found.archived and name == store:
                raise BadRequest(f"store '{name}' is archived: it takes no new credentials")
        if ADMIN in scopes and store != DEFAULT_STORE:
            raise BadRequest("scope admin is the deployment's: only credentials of store"
                             " 'default' may hold it")
        if named and not set(scopes) & {"statements/read", "all/read", "all"}:
            raise BadRequest("other stores to read are given only to a credential that reads"
                             " statements (scope statements/read, all/read or all)")
        return named

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

    def revoke_credential(self, key: str, store: str | None = None) -> None:
        """Revoke by key; given a store, only a credential of that store (another store's is
        not found, worded as a key that does not exist)."""
        try:
            credential = self._credential(key)
        except AggregateNotFoundError:
            raise NotFound(f"no credential with key '{key}'") from None
        if store is not None and getattr(credential, "store", DEFAULT_STORE) != store:
            raise NotFound(f"no credential with key '{key}'")
        if not credential.revoked:
            credential.revoke()
            self.save(credential)

    def credential(self, key: str) -> CredentialInfo | None:
        try:
            c = self._credential(key)
        except AggregateNotFoundError:
            return None
        return CredentialInfo(c.key, c.name, tuple(c.scopes), c.revoked, c.secret_hash,
                              tuple(getattr(c, "classes", ())), getattr(c, "learner", None),
                              getattr(c, "store", DEFAULT_STORE),
                              tuple(getattr(c, "reads_stores", ())))

    def credentials(self, store: str | None = None) -> list[CredentialInfo]:
        """Every credential, or those of one store."""
        topic = get_topic(Credential.Issued)
        found: list[CredentialInfo] = []
        start = 1
        while True:
            page = self.recorder.select_notifications(start, 500, topics=[topic])
            for notification in page:
                info = self.credential(self.mapper.to_domain_event(notification).key)  # type: ignore[attr-defined]
                if info is not None and (store is None or info.store == store):
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

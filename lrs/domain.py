"""Domain aggregates and their events: what the log records."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event


class StoredStatement(Aggregate):
    """One accepted xAPI statement; its id is the statement id, so a duplicate cannot be saved."""

    class Stored(Aggregate.Created):
        statement: dict[str, Any]
        credential: str

    @event(Stored)
    def __init__(self, id: UUID, statement: dict[str, Any], credential: str) -> None:
        self.statement = statement
        self.credential = credential


_CREDENTIAL_NAMESPACE = uuid5(NAMESPACE_URL, "urn:lrs:credential")


def credential_id(key: str) -> UUID:
    return uuid5(_CREDENTIAL_NAMESPACE, key)


class Credential(Aggregate):
    """An HTTP Basic credential: a public key, a hashed secret and the xAPI scopes it grants."""

    class Issued(Aggregate.Created):
        name: str
        key: str
        secret_hash: str
        scopes: list[str]

    @event(Issued)
    def __init__(self, id: UUID, name: str, key: str, secret_hash: str, scopes: list[str]) -> None:
        self.name = name
        self.key = key
        self.secret_hash = secret_hash
        self.scopes = scopes
        self.revoked = False

    @event("Revoked")
    def revoke(self) -> None:
        self.revoked = True

    @event("Reissued")
    def reissue(self, secret_hash: str, scopes: list[str]) -> None:
        self.secret_hash = secret_hash
        self.scopes = scopes
        self.revoked = False

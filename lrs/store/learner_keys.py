"""The key table: one AES key per learner pseudonym and stored day, beside the events it opens.

Statements are sealed under their learner's key (lrs/sealing.py); deleting the key is what makes
the learner's events unreadable, though the append-only log keeps their bytes. Keys live in the
event store's own database and are inserted in the same transaction as the events sealed under
them, so no event is ever durable without its key. The table holds pseudonyms (a keyed hash of
the learner's IFI key), never an identity.

``learner_key_ring`` holds one row: the secret the pseudonyms are keyed with, and a generation
that every erasure raises. A writer checks the generation inside its transaction, so a write
that began before an erasure committed is sealed again rather than under a deleted key.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from lrs.pickled import by_fields
from lrs.store.index import Cursor, marks, rowcount


@by_fields
@dataclass(frozen=True, slots=True)
class LearnerKey:
    key_id: str
    pseudonym: str
    day: str  # the UTC date of stored, so retention can shred by day
    secret: bytes


class KeyGenerationChanged(Exception):
    """An erasure committed since the writer read its keys: they may be deleted; seal again."""


class LearnerKeySQL:
    GENERATION = "SELECT generation FROM learner_key_ring WHERE id = 1"

    def __init__(self, paramstyle: str, blob_type: str) -> None:
        self.paramstyle = paramstyle
        self.blob_type = blob_type

    def sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.paramstyle == "format" else text

    def create_statements(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS learner_key (key_id TEXT PRIMARY KEY, pseudonym TEXT NOT NULL,"
            f" day TEXT NOT NULL, secret {self.blob_type} NOT NULL)",
            "CREATE INDEX IF NOT EXISTS learner_key_pseudonym ON learner_key (pseudonym)",
            "CREATE INDEX IF NOT EXISTS learner_key_day ON learner_key (day)",
            "CREATE TABLE IF NOT EXISTS learner_key_ring (id INTEGER PRIMARY KEY,"
            f" secret {self.blob_type} NOT NULL, generation BIGINT NOT NULL)",
        ]

    def ring(self, c: Cursor) -> tuple[bytes, int]:
        """The pseudonym secret and the erasure generation, the secret made on first use."""
        c.execute(self.sql("INSERT INTO learner_key_ring (id, secret, generation) VALUES (1, ?, 0)"
                           " ON CONFLICT (id) DO NOTHING"), [os.urandom(32)])
        c.execute("SELECT secret, generation FROM learner_key_ring WHERE id = 1")
        row = c.fetchone()
        return bytes(row["secret"]), int(row["generation"])

    def insert(self, c: Cursor, keys: Sequence[LearnerKey], generation: int,
               current: int | None = None) -> None:
        """Inside the events' transaction: the keys, after checking no erasure came between.
        ``current``: the generation the transaction already read under the events table lock."""
        if current is None:
            current = self.generation(c)
        if current != generation:
            raise KeyGenerationChanged(f"erasure generation {current}, sealed at {generation}")
        if not keys:
            return
        if self.paramstyle == "format":  # one statement: psycopg's executemany is a round trip a row
            c.execute("INSERT INTO learner_key (key_id, pseudonym, day, secret) SELECT * FROM"
                      " unnest(%b::text[], %b::text[], %b::text[], %b::bytea[])",
                      [[k.key_id for k in keys], [k.pseudonym for k in keys], [k.day for k in keys],
                       [k.secret for k in keys]])
        else:
            c.executemany("INSERT INTO learner_key (key_id, pseudonym, day, secret) VALUES (?,?,?,?)",
                          [(k.key_id, k.pseudonym, k.day, k.secret) for k in keys])

    def generation(self, c: Cursor) -> int:
        c.execute(self.GENERATION)
        row = c.fetchone()
        return 0 if row is None else int(row["generation"])

    def by_id(self, c: Cursor, key_ids: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        ids = sorted(set(key_ids))
        for start in range(0, len(ids), 5000):
            chunk = ids[start:start + 5000]
            c.execute(self.sql("SELECT key_id, secret FROM learner_key"
                               f" WHERE key_id IN ({marks(len(chunk))})"), chunk)
            found.update({row["key_id"]: bytes(row["secret"]) for row in c.fetchall()})
        return found

    def bump_generation(self, c: Cursor) -> None:
        """First in an erasure's transaction: writers that check after it wait, then seal again."""
        c.execute("UPDATE learner_key_ring SET generation = generation + 1 WHERE id = 1")

    def delete_learner(self, c: Cursor, pseudonym: str) -> int:
        c.execute(self.sql("DELETE FROM learner_key WHERE pseudonym = ?"), [pseudonym])
        return rowcount(c)

    def delete_before(self, c: Cursor, day: str) -> int:
        c.execute(self.sql("DELETE FROM learner_key WHERE day < ?"), [day])
        return rowcount(c)


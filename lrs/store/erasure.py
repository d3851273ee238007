"""What forgetting a learner deletes from the event store's database, in the erasure's transaction.

The log keeps the learner's events, sealed under keys this deletes; everything else that names
the learner goes: their statements' index rows, the index keys of their IFI (its hashes), the
agent names that hold it, their documents' current state, and their keys. Retention does the same by day.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from lrs.sealing import is_sealed, sealed_learner
from lrs.store.index import Cursor, StatementIndexSQL, marks, rowcount
from lrs.store.keys import AGENT, AGENT_RELATED, key_forms
from lrs.store.learner_keys import LearnerKeySQL
from projections.facts import actor_key

CHUNK = 5000
Decode = Callable[[bytes], dict[str, Any]]


@dataclass(slots=True)
class ErasedRows:
    """What an erasure removed (counts), and attachments no remaining statement carries."""

    statements: int = 0
    plaintext: int = 0  # of those, events written before sealing: their bytes stay in the log
    keys: int = 0
    documents: int = 0
    attachments: list[str] = field(default_factory=list)


def _chunks(values: Sequence[Any]) -> list[Sequence[Any]]:
    return [values[i:i + CHUNK] for i in range(0, len(values), CHUNK)]


class ErasureSQL:
    def __init__(self, index: StatementIndexSQL, keys: LearnerKeySQL) -> None:
        self.index = index
        self.keys = keys

    def sql(self, text: str) -> str:
        return self.index.sql(text)

    def forget(self, c: Cursor, learner: str, pseudonym: str, decode: Decode) -> ErasedRows:
        self.keys.bump_generation(c)
        erased = ErasedRows()
        c.execute(self.sql(
            f"SELECT s.seq AS seq, e.state AS state FROM xapi_statement_key k"
            f" JOIN xapi_statement s ON s.seq = k.seq"
            f" JOIN {self.index.events_table} e ON e.{self.index.events_seq} = s.seq"
            " WHERE k.key_hash = ?"), [self.index.key_hash(f"{AGENT}:{learner}")])
        own: list[int] = []
        for row in c.fetchall():
            statement = decode(bytes(row["state"]))["statement"]
            if is_sealed(statement):
                if sealed_learner(statement) == pseudonym:
                    own.append(int(row["seq"]))
            elif actor_key(statement.get("actor")) == learner:
                own.append(int(row["seq"]))
                erased.plaintext += 1
        erased.statements = len(own)
        erased.attachments = self._drop_statements(c, own)
        # Statements of others that name the learner keep their rows, not the learner's IFI.
        c.execute(self.sql("DELETE FROM xapi_statement_key WHERE key_hash IN (?, ?)"),
                  [self.index.key_hash(form) for form in key_forms(f"{AGENT_RELATED}:{learner}")])
        c.execute(self.sql("DELETE FROM xapi_agent_name WHERE ifi = ?"), [learner])
        c.execute(self.sql("DELETE FROM xapi_document WHERE agent = ?"), [learner])
        erased.documents = rowcount(c)
        erased.keys = self.keys.delete_learner(c, pseudonym)
        return erased

    def _drop_statements(self, c: Cursor, seqs: Sequence[int]) -> list[str]:
        """Delete statements' index rows; returns the attachment hashes only they carried."""
        hashes: set[str] = set()
        for chunk in _chunks(sorted(seqs)):
            chunk_marks = marks(len(chunk))
            c.execute(self.sql("SELECT sha2 FROM xapi_statement_attachment"
                               f" WHERE seq IN ({chunk_marks})"),
                      list(chunk))
            hashes |= {row["sha2"] for row in c.fetchall()}
            for table in ("xapi_statement_attachment", "xapi_statement_key", "xapi_statement"):
                c.execute(self.sql(f"DELETE FROM {table} WHERE seq IN ({chunk_marks})"),
                          list(chunk))
        alone = []
        for sha2 in sorted(hashes):
            c.execute(self.sql("SELECT 1 AS found FROM xapi_statement_attachment WHERE sha2 = ?"
                               " LIMIT 1"), [sha2])
            if c.fetchone() is None:
                alone.append(sha2)
        return alone

    def statements_before(self, c: Cursor, day: str) -> tuple[int, int]:
        """How many statements were stored before a day, and how many learners' keys they use."""
        c.execute(self.sql("SELECT COUNT(*) AS n FROM xapi_statement WHERE stored < ?"), [day])
        statements = int(c.fetchone()["n"])
        c.execute(self.sql("SELECT COUNT(DISTINCT pseudonym) AS n FROM learner_key WHERE day < ?"),
                  [day])
        return statements, int(c.fetchone()["n"])

    def retain_from(self, c: Cursor, day: str) -> ErasedRows:
        """Forget every statement stored before a day: its keys and its index rows."""
        self.keys.bump_generation(c)
        erased = ErasedRows()
        c.execute(self.sql("SELECT seq FROM xapi_statement WHERE stored < ?"), [day])
        seqs = [int(row["seq"]) for row in c.fetchall()]
        erased.statements = len(seqs)
        erased.attachments = self._drop_statements(c, seqs)
        erased.keys = self.keys.delete_before(c, day)
        self._forget_unnamed_agents(c)
        return erased

    def _forget_unnamed_agents(self, c: Cursor) -> None:
        """Names of agents no remaining statement mentions (every agent a statement names has
        its agent key or, when not its actor or object, its related-agent key)."""
        c.execute(self.sql("SELECT DISTINCT ifi FROM xapi_agent_name"))
        by_hash = {self.index.key_hash(form): row["ifi"] for row in c.fetchall()
                   for form in key_forms(f"{AGENT_RELATED}:{row['ifi']}")}
        named: set[str] = set()
        for chunk in _chunks(sorted(by_hash)):
            c.execute(self.sql("SELECT DISTINCT key_hash FROM xapi_statement_key"
                               f" WHERE key_hash IN ({marks(len(chunk))})"), list(chunk))
            named.update(by_hash[row["key_hash"]] for row in c.fetchall())
        gone = sorted(set(by_hash.values()) - named)
        for chunk in _chunks(gone):
            c.execute(self.sql(f"DELETE FROM xapi_agent_name WHERE ifi IN ({marks(len(chunk))})"),
                      list(chunk))

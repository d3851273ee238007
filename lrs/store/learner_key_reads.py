"""The key table's reads, shared by both recorders (each datastore opens its transactions)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from lrs.store.learner_keys import LearnerKeySQL


class LearnerKeyReads:
    keys: LearnerKeySQL

    def _read_transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def _write_transaction(self) -> AbstractContextManager[Any]:
        raise NotImplementedError

    def key_ring(self) -> tuple[bytes, int]:
        """The pseudonym secret (made on first use) and the erasure generation."""
        with self._write_transaction() as c:
            return self.keys.ring(c)

    def learner_keys(self, key_ids: Sequence[str]) -> dict[str, bytes]:
        """The keys that still exist among these: a missing one was erased."""
        if not key_ids:
            return {}
        with self._read_transaction() as c:
            return self.keys.by_id(c, key_ids)

    def key_generation(self) -> int:
        """The erasure generation alone, read without taking the writer's turn."""
        with self._read_transaction() as c:
            return self.keys.generation(c)

"""The writer's learner keys: made on first use per learner and day, cached while the day lasts.

A key is never looked up before it is made: two writers (say `lrs serve` and a Kafka ingester)
may each make one for the same learner and day, which is harmless, since a learner is forgotten
by pseudonym and retention by day. A write's new keys enter the cache only once the write has
committed them, and an erasure in any process empties the cache (the generation check in
lrs/store/learner_keys.py), so no statement is sealed under a key that is not, or no longer, stored.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from lrs.sealing import pseudonym
from lrs.store.learner_keys import LearnerKey


class KeyBatch:
    """The keys one write uses: those cached and those it makes."""

    def __init__(self, ring: KeyRing, day: str) -> None:
        self.ring = ring
        self.day = day
        self.generation = ring.generation
        self.new: dict[str, LearnerKey] = {}

    def key_of(self, learner: str) -> LearnerKey:
        key = self.ring.cached.get(learner) or self.new.get(learner)
        if key is None:
            key = self.new[learner] = LearnerKey(os.urandom(8).hex(), self.ring.pseudonym(learner),
                                                 self.day, os.urandom(32))
        return key


class KeyRing:
    def __init__(self, load: Callable[[], tuple[bytes, int]]) -> None:
        self._load = load
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self.generation = 0
        self.day = ""
        self.cached: dict[str, LearnerKey] = {}  # learner -> key, for self.day
        self._pseudonyms: dict[str, str] = {}

    def reload(self) -> None:
        """After an erasure somewhere: every cached key may be gone."""
        with self._lock:
            self._secret, self.generation = self._load()
            self.cached = {}

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self.reload()
        assert self._secret is not None
        return self._secret

    def pseudonym(self, learner: str) -> str:
        found = self._pseudonyms.get(learner)
        if found is None:
            if len(self._pseudonyms) > 1_000_000:
                self._pseudonyms.clear()
            found = self._pseudonyms[learner] = pseudonym(self.secret, learner)
        return found

    def batch(self, day: str) -> KeyBatch:
        self.secret  # noqa: B018 - loads the secret and generation before the first write
        if day != self.day:
            self.day, self.cached = day, {}
        return KeyBatch(self, day)

    def committed(self, batch: KeyBatch) -> None:
        if batch.day == self.day and batch.generation == self.generation:
            self.cached.update(batch.new)

"""The writer's learner keys: made on first use per learner and day, cached while the day lasts.

A key is never looked up before it is made: two writers (say `lrs serve` and a Kafka ingester)
may each make one for the same learner and day, which is harmless, since a learner is forgotten
by pseudonym and retention by day. A write's new keys enter the cache only once the write has
committed them, and an erasure in any process empties the cache (the generation check in
lrs/store/learner_keys.py), so no statement is sealed under a key that is not, or no longer, stored.

A request may seal its statements before they reach the writer (lrs/statement_events.py, in
the worker that read the request): the writer takes that work only when it was done under its
own generation and stored day, and writes the keys it was done with beside the events.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable

from lrs.sealing import pseudonym
from lrs.store.learner_keys import LearnerKey


class KeyBatch:
    """The keys one write uses: those cached and those it makes."""

    def __init__(self, ring: KeyRing, day: str) -> None:
        self.ring = ring
        self.day = day
        self.generation = ring.generation
        self.new: dict[str, LearnerKey] = {}
        self.carried: dict[str, tuple[str, LearnerKey]] = {}  # key id -> (learner, key)

    def key_of(self, learner: str) -> LearnerKey:
        key = self.ring.cached.get(learner) or self.new.get(learner)
        if key is None:
            key = self.new[learner] = LearnerKey(os.urandom(8).hex(), self.ring.pseudonym(learner),
                                                 self.day, os.urandom(32))
        return key

    def carry(self, keys: Iterable[tuple[str, LearnerKey]]) -> None:
        """Keys a request made when it sealed its statements ahead: written with this write,
        whether the writer takes that sealing or seals the statements again."""
        for learner, key in keys:
            self.carried[key.key_id] = (learner, key)

    def keys_to_write(self) -> list[LearnerKey]:
        return [*self.new.values(), *(key for _, key in self.carried.values())]


class KeyRing:
    def __init__(self, load: Callable[[], tuple[bytes, int]],
                 generation: Callable[[], int] | None = None,
                 keys_of_day: Callable[[list[str], str], dict[str, LearnerKey]] | None = None
                 ) -> None:
        self._load = load
        self._generation = generation
        self._keys_of_day = keys_of_day
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self.generation = 0
        self.day = ""
        self.cached: dict[str, LearnerKey] = {}  # learner -> key, for self.day
        self._pseudonyms: dict[str, str] = {}
        self._checked = 0.0

    def reload(self) -> None:
        """After an erasure somewhere: every cached key may be gone."""
        with self._lock:
            self._secret, self.generation = self._load()
            self.cached = {}
            self._checked = time.monotonic()

    def refresh(self, max_age: float) -> None:
        """For a ring that seals ahead of the writer (a worker's), which no failed write tells
        of an erasure: the generation read again once it is older than ``max_age`` seconds."""
        if self._secret is not None and time.monotonic() - self._checked < max_age:
            return
        if self._secret is None or self._generation is None or self._generation() != self.generation:
            self.reload()
        self._checked = time.monotonic()

    def prefetch(self, learners: Iterable[str], day: str) -> None:
        """Keys the writer already stored for these learners today, read once into the cache:
        sealing ahead, a request cannot know whether the keys it made were written (its
        statements may all have been duplicates), so it keeps none and finds them here."""
        if self._keys_of_day is None:
            return
        self.batch(day)  # the day's cache
        cache = self.cached
        missing = {self.pseudonym(learner): learner for learner in learners
                   if learner not in cache}
        if missing:
            for name, key in self._keys_of_day(list(missing), day).items():
                cache.setdefault(missing[name], key)

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
            for learner, key in batch.carried.values():
                self.cached.setdefault(learner, key)
            self.cached.update(batch.new)

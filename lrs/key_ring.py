"""The writer's learner keys: made on first use per learner and day, cached while the day lasts.

A key is never looked up before it is made: two writers (say `lrs serve` and a Kafka ingester)
may each make one for the same learner and day, which is harmless, since a learner is forgotten
by pseudonym and retention by day. A write's new keys enter the cache only once the write has
committed them, and an erasure in any process empties the cache (the generation check in
lrs/store/learner_keys.py), so no statement is sealed under a key that is not, or no longer, stored.

A request may seal its statements before they reach the writer (lrs/statement_events.py, in
the worker that read the request): the writer takes that work only when it was done under its
own generation and stored day, and writes the keys it was done with beside the events, for
duplicates too; the request's process keeps them once the write is acknowledged.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable

from lrs.sealing import pseudonym
from lrs.store.learner_keys import LearnerKey


class KeyBatch:
    """The keys one write uses: those cached for its day and generation, and those it makes.

    It keeps the cache it was made with: an erasure (a new generation) or another day gives
    the ring other caches, never changes this one's meaning."""

    def __init__(self, ring: KeyRing, day: str, generation: int,
                 cache: dict[str, LearnerKey]) -> None:
        self.ring = ring
        self.day = day
        self.generation = generation
        self.cache = cache
        self.new: dict[str, LearnerKey] = {}
        self.carried: dict[str, tuple[str, LearnerKey]] = {}  # key id -> (learner, key)

    def key_of(self, learner: str) -> LearnerKey:
        key = self.cache.get(learner) or self.new.get(learner)
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
    """Shared by the writer and the threads that seal requests ahead: every step that reads the
    generation and then changes a cache holds the lock, so an erasure's reload cannot come
    between them, and each day has its own cache, so a request read before midnight cannot
    give a statement stored after it yesterday's key."""

    def __init__(self, load: Callable[[], tuple[bytes, int]],
                 generation: Callable[[], int] | None = None,
                 forget: Callable[[], None] | None = None) -> None:
        """``forget``: called at each reload, for what else the process remembers by learner."""
        self._load = load
        self._generation = generation
        self._forget = forget
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self.generation = 0
        self._caches: dict[str, dict[str, LearnerKey]] = {}  # day -> learner -> key
        self._checked = 0.0

    def reload(self) -> None:
        """After an erasure somewhere: every cached key may be gone, and the learner it forgot
        is remembered here no longer (the caches name learners by IFI)."""
        secret, generation = self._load()
        with self._lock:
            self._secret, self.generation = secret, generation
            self._caches = {}
            self._checked = time.monotonic()
        if self._forget is not None:
            self._forget()

    def due(self, max_age: float) -> bool:
        """Whether ``refresh(max_age)`` would read the store now."""
        return self._secret is None or time.monotonic() - self._checked >= max_age

    def refresh(self, max_age: float) -> None:
        """For a ring that seals ahead of the writer (a worker's), which no failed write tells
        of an erasure: the generation read again once it is older than ``max_age`` seconds."""
        if not self.due(max_age):
            return
        if self._secret is None or self._generation is None or self._generation() != self.generation:
            self.reload()
        self._checked = time.monotonic()

    def remember(self, generation: int, day: str, keys: Iterable[tuple[str, LearnerKey]]) -> None:
        """Keys made ahead of the writer, once their write is acknowledged (it stored them)."""
        with self._lock:
            cache = self._caches.get(day)
            if generation == self.generation and cache is not None:
                for learner, key in keys:
                    cache.setdefault(learner, key)

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            self.reload()
        assert self._secret is not None
        return self._secret

    def pseudonym(self, learner: str) -> str:
        """Made afresh (an HMAC, ~1.5 us) and not remembered: a memory of them named learners
        by IFI in every process that made one, an erasure's and an export's included, after
        the learner was forgotten. A write makes one only with a learner's new key of the day."""
        return pseudonym(self.secret, learner)

    def batch(self, day: str) -> KeyBatch:
        self.secret  # noqa: B018 - loads the secret and generation before the first write
        with self._lock:
            cache = self._caches.get(day)
            if cache is None:
                cache = self._caches[day] = {}
                for old in sorted(self._caches)[:-2]:  # today's and yesterday's are enough
                    del self._caches[old]
            return KeyBatch(self, day, self.generation, cache)

    def committed(self, batch: KeyBatch) -> None:
        """The write committed: its keys are stored, unless an erasure came after it."""
        with self._lock:
            if batch.generation != self.generation or self._caches.get(batch.day) is not batch.cache:
                return
            for learner, key in batch.carried.values():
                if key.day == batch.day:  # sealed ahead before midnight: stored, not cached
                    batch.cache.setdefault(learner, key)
            batch.cache.update(batch.new)

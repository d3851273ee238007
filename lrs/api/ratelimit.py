"""Limits on failed authentication and on each credential's request rate, answered with 429.

Failed attempts are counted per client address and per credential key in a sliding window;
over either limit an attempt is refused before its secret is checked, so guessing costs the
attacker a 429 and the server no scrypt. The per-key limit is the one an attacker could use to
lock a real client out (it needs only the key), so it is higher than the per-address limit and
a secret that has already been accepted (within a day) passes both limits: hammering a key, or
guessing from a shared address (a school behind one NAT), then stops new guesses without
stopping the clients that hold a secret.
"""

from __future__ import annotations

import functools
import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from lrs.config import Settings

Clock = Callable[[], float]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Bounds the memory an attacker can make us spend on subjects (random keys, many addresses).
MAX_SUBJECTS = 100_000
# How long an accepted secret lets its key past the per-key limit.
KNOWN_SECRET_SECONDS = 24 * 3600.0


class RateLimited(Exception):
    """A request refused by a limit; Retry-After says when to try again.

    Deliberately not an LRSError: the app's LRSError handler cannot add Retry-After, so this
    travels up to AccessLimitMiddleware, which answers it.
    """

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))

    def __reduce__(self) -> tuple[Any, ...]:  # a worker hears it from the parent (links.py)
        return (type(self), (str(self), self.retry_after))


class FailureWindow:
    """The times of each subject's last `limit` failures, for a sliding-window limit."""

    def __init__(self, limit: int, window: float, max_subjects: int = MAX_SUBJECTS) -> None:
        self.limit = limit
        self.window = window
        self.max_subjects = max_subjects
        # Plain lists: a deque's fixed blocks would cost ~1 KB for each address seen once.
        self._failures: OrderedDict[str, list[float]] = OrderedDict()

    def __contains__(self, subject: str) -> bool:
        return subject in self._failures

    def retry_after(self, subject: str, now: float) -> float | None:
        """Seconds until the subject may try again, or None while it is under the limit."""
        times = self._failures.get(subject)
        if self.limit == 0 or times is None or len(times) < self.limit:
            return None
        wait = times[0] + self.window - now
        return wait if wait > 0 else None

    def record(self, subject: str, now: float) -> None:
        if self.limit == 0:
            return
        times = self._failures.pop(subject, None) or []
        times.append(now)
        del times[:-self.limit]
        self._failures[subject] = times
        # Subjects are kept in order of their last failure, so the stale ones are at the front.
        while self._failures:
            oldest = next(iter(self._failures.values()))
            if oldest[-1] > now - self.window and len(self._failures) <= self.max_subjects:
                break
            self._failures.popitem(last=False)


class TokenBuckets:
    """One token bucket per credential: `rate` requests a second on average, `burst` at once."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, subject: str, now: float) -> float | None:
        """Spend a token; None if there was one, else the seconds until there is."""
        tokens, then = self._buckets.get(subject, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[subject] = (tokens, now)
            return (1 - tokens) / self.rate
        self._buckets[subject] = (tokens - 1, now)
        return None


class AccessLimits:
    """Every limit a request with credentials passes, shared by all requests of one app."""

    def __init__(self, settings: Settings, clock: Clock = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        window = settings.auth_failure_window_seconds
        self.by_address = FailureWindow(settings.auth_failures_per_address, window)
        self.by_key = FailureWindow(settings.auth_failures_per_key, window)
        self.requests = TokenBuckets(settings.credential_requests_per_second,
                                     settings.credential_burst)
        self.trusted_proxies = _networks(settings.trusted_proxies)
        self._known_secrets: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The address failures are counted against: the peer, or behind a trusted proxy
        the last address in X-Forwarded-For that is not itself a trusted proxy."""
        address = peer or "unknown"
        if forwarded_for and self._trusted(address):
            for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
                address = hop
                if not self._trusted(hop):
                    break
        return _subject(address)

    def admit(self, key: str, fingerprint: bytes, address: str) -> None:
        """Refuse an attempt from a hammering address, or at a hammered key with a new secret."""
        s = self.settings
        with self._lock:
            now = self.clock()
            # A secret accepted within the day passes both limits: twenty wrong guesses from one
            # pupil behind a school's shared address must not lock out every tool of the school.
            known = self._known_secrets.get(fingerprint, 0.0) > now
            wait = self.by_address.retry_after(address, now)
            if wait is not None and not known:
                raise RateLimited(
                    f"too many failed authentications from {address}: {s.auth_failures_per_address}"
                    f" within {s.auth_failure_window_seconds:g} s (LRS_AUTH_FAILURES_PER_ADDRESS);"
                    f" retry after {math.ceil(wait)} s", wait)
            wait = self.by_key.retry_after(key, now)
            if wait is not None and not known:
                raise RateLimited(
                    f"too many failed authentications for key '{key}': {s.auth_failures_per_key}"
                    f" within {s.auth_failure_window_seconds:g} s (LRS_AUTH_FAILURES_PER_KEY);"
                    f" retry after {math.ceil(wait)} s", wait)

    async def before_verify(self, key: str, fingerprint: bytes, address: str) -> None:
        """What a request passes before its secret is checked (RateLimited if it may not)."""
        self.admit(key, fingerprint, address)

    async def after_verify(self, key: str, fingerprint: bytes, address: str, ok: bool) -> None:
        if ok:
            self.succeeded(fingerprint)
        else:
            self.failed(key, address)

    def failed(self, key: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            self.by_address.record(address, now)
            self.by_key.record(key, now)

    def succeeded(self, fingerprint: bytes) -> None:
        with self._lock:
            now = self.clock()
            self._known_secrets.pop(fingerprint, None)
            self._known_secrets[fingerprint] = now + KNOWN_SECRET_SECONDS
            while self._known_secrets and (len(self._known_secrets) > MAX_SUBJECTS
                                           or next(iter(self._known_secrets.values())) <= now):
                self._known_secrets.popitem(last=False)

    def take_request(self, key: str) -> None:
        """Count one request against the credential's rate, when a rate is configured."""
        rate = self.settings.credential_requests_per_second
        if rate == 0:
            return
        with self._lock:
            wait = self.requests.take(key, self.clock())
        if wait is not None:
            raise RateLimited(
                f"credential '{key}' is over its request rate of {rate:g} per second, bursts of"
                f" {self.settings.credential_burst} (LRS_CREDENTIAL_REQUESTS_PER_SECOND,"
                f" LRS_CREDENTIAL_BURST); retry after {math.ceil(wait)} s", wait)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.trusted_proxies)


def _networks(entries: Sequence[str]) -> list[Network]:
    try:
        return [ipaddress.ip_network(entry, strict=False) for entry in entries]
    except ValueError as exc:
        raise ValueError(f"LRS_TRUSTED_PROXIES: {exc}") from None


@functools.lru_cache(maxsize=4096)  # parsing the address was a fiftieth of a batch-1 request
def _subject(address: str) -> str:
    """IPv6 clients are counted per /64: one host commonly holds a whole /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class AccessLimitMiddleware:
    """Hands the limits to the routes (request.state.access_limits) and answers RateLimited."""

    def __init__(self, app: ASGIApp, limits: AccessLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})["access_limits"] = self.limits
        try:
            await self.app(scope, receive, send)
        except RateLimited as exc:
            # Raised while the credential is checked, so before any response has started.
            body = orjson.dumps({"error": {"status": 429, "message": str(exc)}})
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(exc.retry_after).encode())]})
            await send({"type": "http.response.body", "body": body})

"""The counting behind the access limits: windows, buckets and client addresses."""

from __future__ import annotations

from typing import Any

from lrs.api.ratelimit import AccessLimits, FailureWindow, TokenBuckets
from lrs.config import Settings


def limits(**settings: Any) -> AccessLimits:
    return AccessLimits(Settings(**settings))


def test_failures_leave_the_window_one_at_a_time() -> None:
    window = FailureWindow(limit=2, window=60)
    window.record("a", now=0)
    window.record("a", now=30)
    assert window.retry_after("a", now=40) == 20
    assert window.retry_after("a", now=60) is None
    window.record("a", now=61)
    assert window.retry_after("a", now=61) == 29


def test_a_limit_of_zero_never_refuses() -> None:
    window = FailureWindow(limit=0, window=60)
    for _ in range(100):
        window.record("a", now=0)
    assert window.retry_after("a", now=0) is None


def test_subjects_whose_window_has_passed_are_forgotten() -> None:
    window = FailureWindow(limit=5, window=60)
    window.record("old", now=0)
    window.record("new", now=61)
    assert "old" not in window and "new" in window


def test_the_subject_table_is_bounded() -> None:
    window = FailureWindow(limit=5, window=60, max_subjects=3)
    for n in range(10):
        window.record(f"key-{n}", now=n)
    assert [f"key-{n}" in window for n in range(10)] == [False] * 7 + [True] * 3


def test_a_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    buckets = TokenBuckets(rate=2, burst=3)
    assert [buckets.take("k", now=0) for _ in range(4)] == [None, None, None, 0.5]
    assert buckets.take("k", now=100) is None
    assert [buckets.take("k", now=100) for _ in range(3)] == [None, None, 0.5]


def test_an_ipv6_client_is_counted_per_64() -> None:
    assert limits().client_address("2001:db8:1:2:a::1", None) == "2001:db8:1:2::/64"
    assert limits().client_address("::ffff:192.0.2.7", None) == "192.0.2.7"


def test_the_client_is_the_last_forwarded_address_that_is_not_a_trusted_proxy() -> None:
    behind = limits(trusted_proxies=["10.0.0.0/8", "192.0.2.1"])
    chain = "203.0.113.9, 198.51.100.4, 10.1.1.1"
    assert behind.client_address("192.0.2.1", chain) == "198.51.100.4"
    assert behind.client_address("198.51.100.200", chain) == "198.51.100.200"
    assert limits().client_address("10.1.1.1", chain) == "10.1.1.1"

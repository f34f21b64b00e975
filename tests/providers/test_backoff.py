"""The one waiting rule of providers/: Retry-After when given, else exponential backoff with
jitter under a cap; the router's RetryPolicy decides with it."""

from __future__ import annotations

import email.utils

import httpx
import pytest

from imagegate.providers.backoff import JITTER, MAX_BACKOFF, backoff, delay, retry_after
from imagegate.providers.base import ProviderError, unavailable
from imagegate.providers.routing import RetryPolicy

NOW = 1_900_000_000.0  # far from the real time: an HTTP date must be read against ``now``


def answer(retry_after_header: str | None) -> httpx.Response:
    headers = {} if retry_after_header is None else {"Retry-After": retry_after_header}
    return httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-3", 0.0),  # never a negative wait
        (email.utils.formatdate(NOW + 40, usegmt=True), 40.0),
        (email.utils.formatdate(NOW - 40, usegmt=True), 0.0),  # a date passed: no wait
        (email.utils.formatdate(NOW + 40).replace("+0000", "-0000"), 40.0),  # naive form
    ],
)
def test_retry_after_reads_seconds_and_http_dates_against_now(header: str, seconds: float) -> None:
    assert retry_after(answer(header), NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "inf", "Mon, 99 Foo 2026"])
def test_an_absent_or_unreadable_retry_after_is_none(header: str | None) -> None:
    assert retry_after(answer(header), NOW) is None


def test_backoff_doubles_from_the_base_with_jitter_and_stays_under_the_cap() -> None:
    low, high = JITTER
    for attempt, step in enumerate([1.0, 2.0, 4.0, 8.0, 16.0]):
        waits = [backoff(attempt, 1.0, cap=100.0) for _ in range(200)]
        assert all(step * low <= wait <= step * high for wait in waits), (attempt, waits)
        assert len(set(waits)) > 1, "no jitter"
    assert backoff(0, 1.0, uniform=lambda a, b: b) == high
    assert backoff(3, 1.0, uniform=lambda a, b: a) == 8.0 * low
    assert backoff(10, 1.0, cap=30.0, uniform=lambda a, b: b) == 30.0
    assert backoff(5000, 1.0) <= MAX_BACKOFF  # no overflow, however many attempts


def test_delay_prefers_the_retry_after_to_the_backoff() -> None:
    assert delay(4, 1.0, retry_after=7.0) == 7.0
    assert delay(0, 1.0, retry_after=0.0) == 0.0
    assert 0.8 <= delay(0, 1.0, retry_after=None) <= 1.2


def test_the_router_policy_waits_by_the_same_rule() -> None:
    policy = RetryPolicy(retries=3, backoff=1.0, max_retry_after=60.0, max_backoff=5.0)

    assert policy.wait(unavailable("x", retry_after=20.0), 0) == 20.0
    assert policy.wait(unavailable("x", retry_after=61.0), 0) is None, "too long: fail over"
    assert 1.6 <= (policy.wait(unavailable("x"), 1) or 0) <= 2.4
    assert policy.wait(unavailable("x"), 2) == pytest.approx(4.0, rel=0.2)
    assert policy.wait(unavailable("x"), 3) is None, "out of retries"
    assert policy.wait(ProviderError("no", retryable=False), 0) is None
    capped = RetryPolicy(retries=20, backoff=1.0, max_backoff=5.0)
    assert all((capped.wait(unavailable("x"), 10) or 0) <= 5.0 for _ in range(50))

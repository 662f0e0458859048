"""``Retry-After`` parsing (plan T05): seconds or an HTTP-date, anything else is invalid."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings, strategies as st

from kneo_proto import parse_retry_after

pytestmark = pytest.mark.plan("T05")

# 2023-11-14 22:13:20 UTC; the dates 30 s later below are 22:13:50 UTC.
WALL_NOW = 1_700_000_000.0
CEILING = 1_000_000_000.0  # huge delays are bounded, never built as huge numbers

RETRY_AFTER_CASES: list[tuple[str | None, float | None]] = [
    ("0", 0.0),
    ("1", 1.0),
    ("\t42 ", 42.0),
    ("7", 7.0),
    ("60", 60.0),
    ("61", 61.0),
    ("3600", 3600.0),
    ("007", 7.0),
    ("0" * 40 + "5", 5.0),
    ("9999999999", CEILING),
    ("5" * 5000, CEILING),
    ("-1", None),
    ("+1", None),
    ("1.5", None),
    ("1e3", None),
    ("0x10", None),
    ("1 2", None),
    ("²", None),
    ("\u0661", None),  # ARABIC-INDIC DIGIT ONE: a digit, but not an ASCII one
    ("abc", None),
    ("", None),
    (" \t ", None),
    (None, None),
    # HTTP-dates in the past: no wait.
    ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0),  # RFC 1123
    ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # RFC 850
    ("Sun Nov  6 08:49:37 1994", 0.0),  # asctime
    # HTTP-dates 30 s in the future.
    ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),
    ("Tuesday, 14-Nov-23 22:13:50 GMT", 30.0),
    ("Tue Nov 14 22:13:50 2023", 30.0),
    ("  Tue, 14 Nov 2023 22:13:50 GMT\t", 30.0),
    # Dates that cannot be represented or parsed.
    ("Fri, 31 Dec 9999 23:59:59 GMT", 253402300799.0 - WALL_NOW),
    ("Mon, 01 Jan 0000 00:00:00 GMT", None),  # there is no year 0
    ("Tue, 14 Nov 2023 22:13:50 +0000", None),  # HTTP-dates say GMT, nothing else
    ("tue, 14 nov 2023 22:13:50 gmt", None),
    ("Tue, 14 Foo 2023 22:13:50 GMT", None),
    ("Tue, 14 Nov 2023 22:13:50", None),
    # RFC 9110 section 5.6.7: a two-digit year more than 50 years ahead is in the past.
    (
        "Saturday, 06-Nov-49 08:49:37 GMT",
        datetime(2049, 11, 6, 8, 49, 37, tzinfo=UTC).timestamp() - WALL_NOW,
    ),
    ("Thursday, 06-Nov-69 08:49:37 GMT", 0.0),
    ("Tue, 32 Nov 2023 22:13:50 GMT", None),
    ("Tue, 14 Nov 2023 25:13:50 GMT", None),
]


def test_retry_after_table_is_not_empty() -> None:
    assert len(RETRY_AFTER_CASES) >= 30


@pytest.mark.parametrize(("value", "expected"), RETRY_AFTER_CASES)
def test_parse_retry_after_gives_seconds_or_none(value: str | None, expected: float | None) -> None:
    parsed = parse_retry_after(value, wall_now=WALL_NOW)
    if expected is None:
        assert parsed is None
    else:
        assert parsed == pytest.approx(expected, abs=1e-6)
        assert isinstance(parsed, float)


@given(st.text(max_size=64))
@settings(max_examples=1000, derandomize=True)
def test_parse_retry_after_never_raises_and_is_never_negative(value: str) -> None:
    parsed = parse_retry_after(value, wall_now=WALL_NOW)
    assert parsed is None or (math.isfinite(parsed) and 0.0 <= parsed <= 10**12)


@given(st.integers(min_value=0, max_value=10**30))
@settings(max_examples=300, derandomize=True)
def test_parse_retry_after_reads_any_delay_seconds_up_to_the_ceiling(seconds: int) -> None:
    assert parse_retry_after(str(seconds), wall_now=WALL_NOW) == float(min(seconds, 10**9))


@given(st.integers(min_value=0, max_value=10**12))
@settings(max_examples=200, derandomize=True)
def test_parse_retry_after_accepts_huge_wall_clocks_without_overflow(wall_now: int) -> None:
    parsed = parse_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", wall_now=float(wall_now))
    assert parsed is not None
    assert parsed == pytest.approx(max(1_700_000_030.0 - wall_now, 0.0))

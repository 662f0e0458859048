"""HTTP-date parsing (RFC 9110 section 5.6.7), without the clock and without locales.

Invariant: only the three forms RFC 9110 lets a recipient accept parse; anything else
returns None. HTTP-dates are always GMT.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["parse_http_date"]

_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_TIME = r"(\d\d):(\d\d):(\d\d)"
# IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
_IMF = re.compile(rf"[A-Z][a-z]{{2}}, (\d\d) ([A-Z][a-z]{{2}}) (\d{{4}}) {_TIME} GMT")
# RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
_RFC850 = re.compile(rf"[A-Z][a-z]+, (\d\d)-([A-Z][a-z]{{2}})-(\d\d) {_TIME} GMT")
# asctime: Sun Nov  6 08:49:37 1994
_ASCTIME = re.compile(rf"[A-Z][a-z]{{2}} ([A-Z][a-z]{{2}}) ([ \d]\d) {_TIME} (\d{{4}})")


def parse_http_date(text: str) -> float | None:
    """Return the POSIX timestamp of an HTTP-date, or None when ``text`` is not one."""
    if match := _IMF.fullmatch(text):
        day, month, year, hh, mm, ss = match.groups()
    elif match := _RFC850.fullmatch(text):
        day, month, year, hh, mm, ss = match.groups()
        # RFC 9110: a two-digit year more than 50 years ahead is in the past century.
        year = str(2000 + int(year) if int(year) < 50 else 1900 + int(year))
    elif match := _ASCTIME.fullmatch(text):
        month, day, hh, mm, ss, year = match.groups()
    else:
        return None
    if month not in _MONTHS:
        return None
    try:
        when = datetime(int(year), _MONTHS[month], int(day), int(hh), int(mm), int(ss), tzinfo=UTC)
    except ValueError:
        return None
    return when.timestamp()

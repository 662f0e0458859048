"""The project's speed targets, computed from one run's figures: met or missed, never asserted.

Every ratio compares medians measured in the same run, on the same backend:

- kneo-client's CPU per call at most 1.15x raw httpcore2 + msgspec (``runs.get`` and page);
- at most 0.5x the generated client's on ``runs.get``, 0.3x on the page;
- a no-op observer adding at most 3% to kneo-client's CPU per ``runs.get``;
- with 256 calls in flight on 20 connections, at least 0.9x its own sequential rate and
  at least 2x raw httpcore2's 256-in-flight rate (asyncio and trio);
- ``import kneo_client`` at most 60 ms over a bare interpreter start (and, since the
  package resolves its names lazily, the same limit shown for importing ``KneoClient``);
- the walk over the audit log peaking at most at two decoded pages.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.calls import GET, PAGE, in_flight
from benchmarks.paging import WALK
from benchmarks.peers import GENERATED, KNEO, KNEO_OBSERVED, RAW_MSGSPEC
from benchmarks.sampling import Result
from benchmarks.startup import BARE, FROM_IMPORT, IMPORT, Startup
from benchmarks.suite import Figures

__all__ = ["Target", "targets"]

BACKENDS = ("blocking", "asyncio", "trio")
ASYNC_BACKENDS = ("asyncio", "trio")


@dataclass(frozen=True, slots=True)
class Target:
    """One target: what is compared, the value measured (None: not measured), the limit."""

    what: str
    measured: float | None
    unit: str
    at_most: bool
    limit: float

    @property
    def verdict(self) -> str:
        """``met``, ``missed`` or ``not measured``."""
        if self.measured is None:
            return "not measured"
        met = self.measured <= self.limit if self.at_most else self.measured >= self.limit
        return "met" if met else "missed"


def _ratio(results: dict[str, Result], key: str, floor_key: str) -> float | None:
    """CPU per call of ``key`` over that of ``floor_key``."""
    if key not in results or floor_key not in results:
        return None
    return results[key].cpu_median_us / results[floor_key].cpu_median_us


def _rate_ratio(results: dict[str, Result], key: str, other_key: str) -> float | None:
    """Calls per second of ``key`` over those of ``other_key`` (wall time per call)."""
    if key not in results or other_key not in results:
        return None
    return results[other_key].wall_median_us / results[key].wall_median_us


def _cpu_targets(results: dict[str, Result]) -> list[Target]:
    rows = []
    for call in (GET, PAGE):
        for backend in BACKENDS:
            ratio = _ratio(results, f"{backend}/{call}/{KNEO}", f"{backend}/{call}/{RAW_MSGSPEC}")
            what = f"{backend} `{call}`: kneo CPU/call ÷ httpcore2 + msgspec"
            rows.append(Target(what, ratio, "x", True, 1.15))
    for call, limit in ((GET, 0.5), (PAGE, 0.3)):
        for backend in BACKENDS:
            ratio = _ratio(results, f"{backend}/{call}/{KNEO}", f"{backend}/{call}/{GENERATED}")
            what = f"{backend} `{call}`: kneo CPU/call ÷ generated client"
            rows.append(Target(what, ratio, "x", True, limit))
    return rows


def _observer_targets(results: dict[str, Result]) -> list[Target]:
    rows = []
    for backend in BACKENDS:
        key = f"{backend}/{GET}/{KNEO_OBSERVED}"
        ratio = _ratio(results, key, f"{backend}/{GET}/{KNEO}")
        what = f"{backend} `{GET}`: CPU with a no-op observer ÷ without"
        rows.append(Target(what, ratio, "x", True, 1.03))
    return rows


def _in_flight_targets(results: dict[str, Result]) -> list[Target]:
    rows = []
    busy = in_flight(256)
    for backend in ASYNC_BACKENDS:
        kneo = f"{backend}/{busy}/{KNEO}"
        own = _rate_ratio(results, kneo, f"{backend}/{GET}/{KNEO}")
        rows.append(
            Target(f"{backend}: kneo calls/s, 256 in flight ÷ sequential", own, "x", False, 0.9)
        )
    for backend in ASYNC_BACKENDS:
        kneo = f"{backend}/{busy}/{KNEO}"
        raw = _rate_ratio(results, kneo, f"{backend}/{busy}/{RAW_MSGSPEC}")
        what = f"{backend}: kneo calls/s ÷ raw httpcore2's, 256 in flight"
        rows.append(Target(what, raw, "x", False, 2.0))
    return rows


def _import_targets(startup: Startup | None) -> list[Target]:
    """``import kneo_client`` over a bare start; the same limit shown for importing a client
    class, since ``kneo_client`` resolves its names lazily.
    """
    rows = []
    for name, what in (
        (IMPORT, "`import kneo_client` over a bare start"),
        (FROM_IMPORT, "`from kneo_client import KneoClient` over a bare start (same limit)"),
    ):
        extra = None
        if startup is not None:
            extra = startup.process_ms[name][0] - startup.process_ms[BARE][0]
        rows.append(Target(what, extra, " ms", True, 60.0))
    return rows


def targets(figures: Figures) -> list[Target]:
    """Every target of the suite, from ``figures``."""
    results = {r.key: r for r in figures.results}
    rows = _cpu_targets(results) + _observer_targets(results) + _in_flight_targets(results)
    rows += _import_targets(figures.startup)
    peaks = {(p.backend, p.client): p.peak_bytes for p in figures.peaks}
    for backend in BACKENDS:
        peak = peaks.get((backend, KNEO))
        pages = None if peak is None or not figures.page_bytes else peak / figures.page_bytes
        what = f"{backend}: `{WALK}` peak memory, in decoded pages"
        rows.append(Target(what, pages, " pages", True, 2.0))
    return rows

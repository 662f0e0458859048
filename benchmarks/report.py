"""The suite's markdown report: the machine, the targets, then one table per case."""

from __future__ import annotations

import importlib.metadata
import os
import platform

from benchmarks.bench_core import cpu_name
from benchmarks.calls import GET, IN_FLIGHT, PAGE, in_flight
from benchmarks.paging import WALK
from benchmarks.peers import (
    GENERATED,
    KNEO,
    KNEO_OBSERVED,
    KNEO_OTEL,
    PAGE_EVENTS,
    POOL_SIZE,
    RAW_MSGSPEC,
)
from benchmarks.polling import WAIT
from benchmarks.sampling import Result
from benchmarks.startup import BARE, FROM_IMPORT, IMPORTS, PHASES, PROCESSES, Startup
from benchmarks.suite import Figures
from benchmarks.targets import targets

__all__ = ["machine", "markdown"]

LIBRARIES = (
    "kneo-client",
    "msgspec",
    "httpcore2",
    "h11",
    "anyio",
    "trio",
    "httpx",
    "httpcore",
    "attrs",
    "openapi-python-client",
)


def machine() -> list[str]:
    """The machine, the interpreter and the version of every library measured."""
    uname = platform.uname()
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        f"- CPU: {cpu_name()}, {os.cpu_count()} logical CPUs",
        f"- OS: {uname.system} {uname.release} {uname.machine}",
        f"- Python: {platform.python_implementation()} {platform.python_version()}",
        f"- libraries: {', '.join(versions)}",
        "- server: benchmarks.canned_server (asyncio, HTTP/1.1 keep-alive, a child process)",
    ]


def _us(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _x(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(
    title: str, header: list[str], rows: list[list[str]], note: str = "", text: int = 2
) -> list[str]:
    """A titled table whose first ``text`` columns are text, the rest right-aligned figures."""
    numeric = ["---"] * text + ["---:"] * (len(header) - text)
    lines = [f"## {title}", ""] + ([note, ""] if note else [])
    return lines + [_row(header), _row(numeric)] + [_row(r) for r in rows]


def _targets_table(figures: Figures) -> list[str]:
    rows = []
    for t in targets(figures):
        measured = "" if t.measured is None else f"{t.measured:.2f}{t.unit}"
        limit = f"{'≤' if t.at_most else '≥'} {t.limit:g}{t.unit}"
        rows.append([t.what, measured, limit, f"**{t.verdict}**"])
    header = ["target", "measured", "limit", "verdict"]
    lines = ["## Targets", "", "Computed from the medians below; nothing asserts them.", ""]
    return lines + [_row(header), _row(["---", "---:", "---:", "---"])] + [_row(r) for r in rows]


def _cpu_x(r: Result, floor: Result | None) -> str:
    """``r``'s CPU per call over ``floor``'s."""
    return "" if floor is None else _x(r.cpu_median_us / floor.cpu_median_us)


def _rate_x(r: Result, other: Result | None) -> str:
    """``r``'s calls per second over ``other``'s."""
    return "" if other is None else _x(other.wall_median_us / r.wall_median_us)


def _cpu_ratio(results: dict[str, Result], r: Result, floor: str) -> str:
    return _cpu_x(r, results.get(f"{r.backend}/{r.call}/{floor}"))


def _sequential(figures: Figures, call: str, title: str) -> list[str]:
    results = {r.key: r for r in figures.results}
    rows = [
        [
            r.backend,
            r.label,
            _us(r.cpu_median_us),
            _us(r.cpu_p90_us),
            _us(r.wall_median_us),
            _us(r.wall_p90_us),
            _us(r.server_cpu_us),
            _cpu_ratio(results, r, RAW_MSGSPEC),
            _cpu_ratio(results, r, GENERATED),
            f"{r.samples} x {r.calls_per_sample}",
        ]
        for r in figures.results
        if r.call == call
    ]
    header = [
        *("backend", "client", "CPU median", "CPU p90", "wall median", "wall p90"),
        *("server CPU", "CPU x httpcore2+msgspec", "CPU x generated", "samples x calls"),
    ]
    return _table(title, header, rows)


def _observed(figures: Figures) -> list[str]:
    results = {r.key: r for r in figures.results}
    rows = []
    for r in figures.results:
        if r.call != GET or r.client not in (KNEO_OBSERVED, KNEO_OTEL):
            continue
        plain = results.get(f"{r.backend}/{GET}/{KNEO}")
        rows.append(
            [
                r.backend,
                r.label,
                *(_us(v) for v in (r.cpu_median_us, r.cpu_p90_us)),
                "" if plain is None else _us(plain.cpu_median_us),
                "" if plain is None else _us(plain.cpu_p90_us),
                _cpu_x(r, plain),
                "" if plain is None else f"{r.cpu_median_us - plain.cpu_median_us:+.1f}",
            ]
        )
    note = (
        "kneo-client's `runs.get` with observers (rows of table 1, sampled in the same rounds) "
        "beside its row without (`tracing=False`, no observer); each is a client of its own. "
        "The OpenTelemetry row, measured when opentelemetry-api is installed, has tracing on "
        "and no SDK configured: the global providers are OpenTelemetry's no-op ones."
    )
    header = [
        *("backend", "client", "CPU median", "CPU p90", "without: CPU median"),
        *("without: CPU p90", "CPU x without", "extra CPU"),
    ]
    return _table("1b. `runs.get` with observers, µs per call", header, rows, note)


def _in_flight(figures: Figures) -> list[str]:
    results = {r.key: r for r in figures.results}
    rows = []
    for n in IN_FLIGHT:
        for r in (r for r in figures.results if r.call == in_flight(n)):
            sequential = results.get(f"{r.backend}/{GET}/{r.client}")
            raw = results.get(f"{r.backend}/{r.call}/{RAW_MSGSPEC}")
            rows.append(
                [
                    r.backend,
                    r.label,
                    str(n),
                    f"{1e6 / r.wall_median_us:,.0f}",
                    _rate_x(r, sequential),
                    _rate_x(r, raw),
                    *(_us(v) for v in (r.wall_median_us, r.wall_p90_us, r.cpu_median_us)),
                    _us(r.server_cpu_us),
                    f"{r.samples} x {r.calls_per_sample}",
                ]
            )
    header = [
        *("backend", "client", "in flight", "calls/s", "x own sequential rate"),
        *("x raw httpcore2 rate", "wall µs/call", "wall p90", "CPU µs/call", "server CPU µs/call"),
        "samples x calls",
    ]
    title = f"3. `runs.get` calls in flight on a pool of {POOL_SIZE} connections"
    return _table(title, header, rows)


def _walk(figures: Figures) -> list[str]:
    results = {r.key: r for r in figures.results}
    peaks = {(p.backend, p.client): p.peak_bytes for p in figures.peaks}
    page_mib = figures.page_bytes / 2**20
    rows = []
    for r in (r for r in figures.results if r.call == WALK):
        pages = r.calls_per_sample
        floor = results.get(f"{r.backend}/{WALK}/{RAW_MSGSPEC}")
        peak = peaks.get((r.backend, r.client), 0)
        rows.append(
            [
                r.backend,
                r.label,
                *(f"{v * pages / 1000:,.0f}" for v in (r.wall_median_us, r.wall_p90_us)),
                *(f"{v * pages / 1000:,.0f}" for v in (r.cpu_median_us, r.cpu_p90_us)),
                _cpu_x(r, floor),
                f"{peak / 2**20:.2f}",
                _x(peak / figures.page_bytes if figures.page_bytes else None),
                f"{r.samples} x {pages} pages",
            ]
        )
    events = figures.plans.walk_events
    note = (
        f"Each walk yields {events:,} events, {PAGE_EVENTS} a page. One decoded page "
        f"(the tracemalloc peak of decoding one {PAGE_EVENTS}-event page) is "
        f"{page_mib:.2f} MiB; the peak is a traced walk's, above what was allocated before it."
    )
    header = [
        *("backend", "client", "wall ms/walk", "wall p90", "CPU ms/walk", "CPU p90"),
        *("CPU x floor", "peak MiB", "peak in decoded pages", "samples"),
    ]
    return _table(f"4. {events:,} audit events through `{WALK}`", header, rows, note)


def _wait(figures: Figures) -> list[str]:
    results = {r.key: r for r in figures.results}
    rows = []
    for r in (r for r in figures.results if r.call == WAIT):
        floor = results.get(f"{r.backend}/{WAIT}/{RAW_MSGSPEC}")
        get = results.get(f"{r.backend}/{GET}/{KNEO}")
        rows.append(
            [
                r.backend,
                r.label,
                *(_us(v) for v in (r.cpu_median_us, r.cpu_p90_us, r.wall_median_us, r.wall_p90_us)),
                _cpu_x(r, floor),
                "" if floor is None else f"{r.cpu_median_us - floor.cpu_median_us:+.1f}",
                "" if get is None else f"{r.cpu_median_us - get.cpu_median_us:+.1f}",
                f"{r.samples} x {r.calls_per_sample} polls",
            ]
        )
    note = (
        f"µs per poll. Each wait polls a run answered `running` {figures.plans.polls} times, then "
        "`completed`, with `poll_interval=0`: no time is slept, in kneo-client or in the loop."
    )
    header = [
        *("backend", "client", "CPU median", "CPU p90", "wall median", "wall p90"),
        *("CPU x poll loop", "extra CPU vs loop", "extra CPU vs kneo runs.get", "samples"),
    ]
    return _table(f"5. `{WAIT}`, per poll", header, rows, note)


def _startup(startup: Startup) -> list[str]:
    bare = startup.process_ms[BARE][0]
    rows = [
        [f"`{name}`, process wall", f"{m:.1f}", f"{p:.1f}"]
        for name, (m, p) in startup.process_ms.items()
    ]
    for name in IMPORTS:
        extra = startup.process_ms[name][0] - bare
        rows.append([f"difference: `{name}` - bare start", f"{extra:+.1f}", ""])
    for name, (median, p90) in startup.importtime_ms.items():
        statement = PROCESSES[name]
        rows.append([f"`-X importtime`: `{statement}`, total", f"{median:.1f}", f"{p90:.1f}"])
    title = f"6. Start-up, ms ({startup.runs} fresh processes each)"
    lines = _table(title, ["what", "median", "p90"], rows, text=1)
    heaviest = ", ".join(f"{name} {ms:.1f}" for name, ms in startup.heaviest_ms.items())
    statement = PROCESSES[FROM_IMPORT]
    lines += ["", f"Heaviest packages `{statement}` imports (ms): {heaviest}.", ""]
    header = ["first call in a fresh process", *PHASES]
    lines += [_row(header), _row(["---"] + ["---:"] * len(PHASES))]
    for mode, phases in startup.first_call_ms.items():
        client = "SyncKneoClient" if mode == "blocking" else f"KneoClient on {mode}"
        lines.append(_row([client, *(f"{m:.1f} (p90 {p:.1f})" for m, p in phases.values())]))
    note = (
        "The first-call processes time `from kneo_client import KneoClient, Profile, "
        "SyncKneoClient`, then building the client (its drivers are imported then), then the "
        "first call, inside the process."
    )
    return [*lines, "", note]


def _generated_line(figures: Figures) -> str:
    generated = figures.generated
    if generated is None:
        return "- generated client: not measured"
    made = len(generated.operations)
    return (
        f"- generated client: openapi-python-client {generated.version}, {made} operations "
        f"generated in {generated.seconds:.1f} s into a temporary directory"
    )


def markdown(figures: Figures, mode: str) -> str:
    """The whole report."""
    lines = ["# kneo-client benchmarks", "", *machine(), _generated_line(figures)]
    command = "python -m benchmarks" + (" --quick" if mode == "quick" else "")
    lines.append(f"- run: `{command}`, {figures.seconds:.0f} s")
    lines += [f"- note: {note}" for note in figures.notes]
    sections = [
        _targets_table(figures),
        _sequential(figures, GET, "1. Small GET (`runs.get`, 0.5 kB), µs per call"),
        _observed(figures),
        _sequential(
            figures, PAGE, f"2. One {PAGE_EVENTS}-event page (`audit.list`, 300 kB), µs per call"
        ),
        _in_flight(figures),
        _walk(figures),
        _wait(figures),
    ]
    if figures.startup is not None:
        sections.append(_startup(figures.startup))
    for section in sections:
        lines += ["", *section]
    return "\n".join(lines) + "\n"

"""Case 6: start-up, in fresh interpreters.

Each round runs, in turn: ``python -c pass`` (a bare interpreter start), ``python -c
"import kneo_client"``, ``python -c "from kneo_client import KneoClient"``, each of the two
imports again under ``python -X importtime``, and for each backend a process that imports
the client classes, builds a client (``tracing=False``, as every kneo-client peer of the
suite but the one measuring OpenTelemetry) and makes its first ``runs.get`` (a new TCP
connection) against the canned server, timing each phase inside the process. Medians and
p90s are over rounds. ``kneo_client`` resolves its names lazily, so ``import kneo_client``
alone can cost far less than importing a client class; hence both statements. A first,
untimed run imports everything once with ``PYTHONDONTWRITEBYTECODE`` unset, so the bytecode
is on disk before any timed run (the variable is unset for the timed runs too: it decides
only whether bytecode is written, and a stale file is rewritten once).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.peers import API_KEY, RUN_ID
from benchmarks.sampling import WrongResult, median_p90

__all__ = [
    "BARE",
    "FROM_IMPORT",
    "IMPORT",
    "IMPORTS",
    "PHASES",
    "PROCESSES",
    "Startup",
    "measure_startup",
    "parse_importtime",
]

ROOT = Path(__file__).resolve().parent.parent
SUBPROCESS_SECONDS = 60.0
BACKENDS = ("asyncio", "trio", "blocking")
BARE = "python -c pass"
IMPORT = "python -c 'import kneo_client'"
FROM_IMPORT = "python -c 'from kneo_client import KneoClient'"
PROCESSES = {
    BARE: "pass",
    IMPORT: "import kneo_client",
    FROM_IMPORT: "from kneo_client import KneoClient",
}
IMPORTS = (IMPORT, FROM_IMPORT)
PHASES = ("import the classes", "build client", "first runs.get", "process wall")

# The event loop's own library is imported first: the program needs it with or without us.
FIRST_CALL = """
import sys, time
url, key, run_id, mode = sys.argv[1:5]
if mode == "trio":
    import trio
elif mode == "asyncio":
    import asyncio
t0 = time.perf_counter_ns()
from kneo_client import KneoClient, Profile, SyncKneoClient
t1 = time.perf_counter_ns()
profile = Profile(name="bench", url=url, api_key=key)
if mode == "blocking":
    with SyncKneoClient(profile, tracing=False) as client:
        t2 = time.perf_counter_ns()
        client.platform.runs.get(run_id)
        t3 = time.perf_counter_ns()
else:
    async def main():
        async with KneoClient(profile, tracing=False) as client:
            t2 = time.perf_counter_ns()
            await client.platform.runs.get(run_id)
            return t2, time.perf_counter_ns()
    t2, t3 = trio.run(main) if mode == "trio" else asyncio.run(main())
print(t1 - t0, t2 - t1, t3 - t2)
"""


@dataclass(frozen=True, slots=True)
class Startup:
    """Start-up figures in milliseconds, ``(median, p90)`` over ``runs`` fresh processes.

    Attributes:
        runs: Rounds measured.
        process_ms: Wall time of each ``python -c`` command (``BARE``, ``IMPORT``, ...).
        importtime_ms: ``-X importtime``'s total for each statement of ``IMPORTS``.
        heaviest_ms: Median ms of the heaviest packages ``FROM_IMPORT`` imports.
        first_call_ms: By backend, by phase (``PHASES``).
    """

    runs: int
    process_ms: dict[str, tuple[float, float]]
    importtime_ms: dict[str, tuple[float, float]]
    heaviest_ms: dict[str, float]
    first_call_ms: dict[str, dict[str, tuple[float, float]]]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _timed_run(args: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter_ns()
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=ROOT,
        timeout=SUBPROCESS_SECONDS,
        check=False,
    )
    elapsed_ms = (time.perf_counter_ns() - start) / 1e6
    if done.returncode != 0:
        raise WrongResult(f"python {' '.join(args)[:80]} failed: {done.stderr[-2000:]}")
    return elapsed_ms, done


def parse_importtime(stderr: str, root: str = "kneo_client") -> tuple[float, dict[str, float]]:
    """What a statement importing ``root`` cost, from ``python -X importtime``'s report.

    Returns the µs of every top-level import from ``root``'s on (a lazy package imports more
    after its own row), and per top-level package the µs of its outermost imports there.
    """
    rows: list[tuple[int, str, int]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _self, cumulative, name = line.split("|", 2)
        rows.append(((len(name) - len(name.lstrip()) - 1) // 2, name.strip(), int(cumulative)))
    first = min(i for i, row in enumerate(rows) if row[0] == 0 and row[1] == root)
    while first > 0 and rows[first - 1][0] > 0:  # its own imports are listed before it
        first -= 1
    span = rows[first:]
    packages: dict[str, float] = {}
    enclosing: list[str] = []
    for depth, module, micros in reversed(span):  # reversed, each import precedes its own
        package = module.split(".")[0]
        del enclosing[depth:]
        if package not in enclosing:
            packages[package] = packages.get(package, 0.0) + micros
        enclosing.append(package)
    return sum(float(micros) for depth, _, micros in span if depth == 0), packages


def measure_startup(url: str, runs: int) -> Startup:
    """Fresh interpreters, one of each kind per round, ``runs`` rounds."""
    process: dict[str, list[float]] = {name: [] for name in PROCESSES}
    totals: dict[str, list[float]] = {name: [] for name in IMPORTS}
    packages: list[dict[str, float]] = []
    first = {mode: {phase: list[float]() for phase in PHASES} for mode in BACKENDS}
    _timed_run(["-c", "import kneo_client, kneo_drivers.anyio, trio"])  # write bytecode once
    for _ in range(runs):
        for name, code in PROCESSES.items():
            process[name].append(_timed_run(["-c", code])[0])
        for name in IMPORTS:
            done = _timed_run(["-X", "importtime", "-c", PROCESSES[name]])[1]
            total, heaviest = parse_importtime(done.stderr)
            totals[name].append(total / 1000)
        packages.append(heaviest)  # FROM_IMPORT's, the last
        for mode in BACKENDS:
            wall_ms, done = _timed_run(["-c", FIRST_CALL, url, API_KEY, RUN_ID, mode])
            figures = [int(n) / 1e6 for n in done.stdout.split()] + [wall_ms]
            for phase, value in zip(PHASES, figures, strict=True):
                first[mode][phase].append(value)
    names = {p for run in packages for p in run} - {"kneo_client"}
    heaviest_ms = {p: statistics.median(run.get(p, 0.0) for run in packages) / 1000 for p in names}
    return Startup(
        runs=runs,
        process_ms={name: median_p90(values) for name, values in process.items()},
        importtime_ms={name: median_p90(values) for name, values in totals.items()},
        heaviest_ms=dict(sorted(heaviest_ms.items(), key=lambda kv: -kv[1])[:10]),
        first_call_ms={
            mode: {phase: median_p90(values) for phase, values in phases.items()}
            for mode, phases in first.items()
        },
    )

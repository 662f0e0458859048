"""End-to-end benchmark of kneo-client over loopback HTTP, beside raw httpcore2 floors.

Run from the repository root::

    python -m benchmarks.bench_client            # under 2 minutes, markdown tables on stdout
    python -m benchmarks.bench_client --quick    # about 10 s smoke run (CI)
    python -m benchmarks.bench_client --json     # the same figures as JSON

A canned server (``benchmarks.canned_server``) runs in a child process, so the CPU time read
here with ``time.process_time_ns`` is the client's alone. Three things are measured:

- sequential calls, ``runs.get`` (0.5 KB) and ``audit.list`` (1000 events, 300 KB), for
  ``KneoClient`` on asyncio and on trio and for ``SyncKneoClient``, each beside two floors on
  the same backend in the same run: a raw httpcore2 pool doing the same request plus
  ``json.loads``, and plus a msgspec decode into the same Struct;
- 256 concurrent ``runs.get`` over a pool of 20 connections, ``KneoClient`` against a raw
  ``AsyncConnectionPool(max_connections=20)``, on asyncio and on trio;
- start-up: interpreter start, ``import kneo_client``, and the time to a first result in a
  fresh process.

Each sample times ``inner`` calls between two reads of ``time.perf_counter_ns`` (wall) and
``time.process_time_ns`` (CPU); medians and 90th percentiles are taken over samples, whose
order is shuffled every round. Every case is checked once, untimed, to return the right
result, and every sample to have cost the server exactly one request per call. Nothing here
asserts a speed.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import importlib.metadata
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import anyio
import httpcore2
import msgspec

import kneo_proto
from benchmarks.bench_core import cpu_name
from benchmarks.canned_server import CannedServer, serve_canned
from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_proto import endpoints
from kneo_proto.models import AuditEventListResponse, RunStatusResponse

__all__ = ["main"]

RUN_ID = "run_123"
API_KEY = "kneo_bench_key_0123456789"
PAGE_EVENTS = 1000
CONCURRENT_CALLS = 256
POOL_SIZE = 20
TIMEOUT_SECONDS = 10.0  # every raw request's connect/read/write/pool timeout
PHASE_SECONDS = 300.0  # no backend's measurements may take longer than this
SUBPROCESS_SECONDS = 60.0
ROOT = Path(__file__).resolve().parent.parent

RUN_PATH = "/v1/runs/" + RUN_ID
PAGE_TARGET = endpoints.list_audit_events(limit=PAGE_EVENTS).target  # what the client sends
RAW_HEADERS = [
    (b"Accept", b"application/json"),
    (b"Authorization", b"Bearer " + API_KEY.encode()),
    (b"User-Agent", b"bench-raw-httpcore2"),
]
RAW_EXTENSIONS: dict[str, Any] = {
    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), TIMEOUT_SECONDS)
}
RUN_DECODER = msgspec.json.Decoder(RunStatusResponse)
PAGE_DECODER = msgspec.json.Decoder(AuditEventListResponse)

KNEO = "kneo"
RAW_JSON = "raw_json"
RAW_MSGSPEC = "raw_msgspec"
GET, PAGE = "runs.get", "audit.list"
BACKENDS = ("asyncio", "trio", "blocking")

F = TypeVar("F")
AsyncOne = Callable[[], Coroutine[Any, Any, object]]
SyncOne = Callable[[], object]


@dataclass(frozen=True, slots=True)
class Plan:
    """``samples`` timed samples of ``inner`` calls (or batches) each."""

    samples: int
    inner: int


@dataclass(frozen=True, slots=True)
class Plans:
    small: Plan
    page: Plan
    concurrent: Plan  # inner: batches of CONCURRENT_CALLS calls
    startup_runs: int
    warmup_small: int
    warmup_page: int


DEFAULT = Plans(Plan(20, 100), Plan(20, 5), Plan(8, 2), 7, 20, 2)
QUICK = Plans(Plan(3, 20), Plan(3, 2), Plan(2, 1), 1, 5, 1)


@dataclass(frozen=True, slots=True)
class Result:
    """One case's figures, in microseconds per call."""

    key: str
    backend: str
    call: str
    client: str
    label: str
    wall_median_us: float
    wall_p90_us: float
    cpu_median_us: float
    cpu_p90_us: float
    server_cpu_us: float
    samples: int
    calls_per_sample: int


@dataclass(slots=True)
class Samples:
    """Per-call figures of each sample, and totals for the server's share."""

    wall_ns: list[float] = field(default_factory=list)
    cpu_ns: list[float] = field(default_factory=list)
    server_cpu_ns: int = 0
    calls: int = 0


@dataclass(frozen=True, slots=True)
class Case(Generic[F]):
    """One measured thing: ``one`` makes one call (or one batch) and returns its outcome."""

    key: str
    backend: str
    call: str
    client: str
    label: str
    one: F
    plan: Plan
    calls_per_inner: int = 1
    expect: Callable[[object], bool] = lambda _: True


# -- the server's own bookkeeping ----------------------------------------------------------


class ServerStats:
    """Reads the canned server's CPU time and request count over its own connection."""

    def __init__(self, server: CannedServer) -> None:
        parts = urlsplit(server.url)
        assert parts.hostname is not None
        self._conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def read(self) -> tuple[int, int]:
        self._conn.request("GET", "/_canned/stats")
        stats = json.loads(self._conn.getresponse().read())
        return int(stats["cpu_ns"]), int(stats["requests"])

    def close(self) -> None:
        self._conn.close()


def _record(
    case: Case[Any], samples: Samples, stats: tuple[int, int], after: tuple[int, int]
) -> None:
    calls = case.plan.inner * case.calls_per_inner
    if after[1] - stats[1] != calls:
        sys.exit(f"{case.key}: {calls} calls made {after[1] - stats[1]} requests")
    samples.server_cpu_ns += after[0] - stats[0]
    samples.calls += calls


# -- results --------------------------------------------------------------------------------


def _is_run(value: object) -> bool:
    if isinstance(value, dict):
        return value.get("run_id") is not None
    return isinstance(value, RunStatusResponse)


def _is_page(value: object) -> bool:
    if isinstance(value, dict):
        return len(value.get("events", ())) == PAGE_EVENTS
    return isinstance(value, AuditEventListResponse) and len(value.events) == PAGE_EVENTS


def _p90(values: list[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def summarize(case: Case[Any], samples: Samples) -> Result:
    return Result(
        key=case.key,
        backend=case.backend,
        call=case.call,
        client=case.client,
        label=case.label,
        wall_median_us=statistics.median(samples.wall_ns) / 1000,
        wall_p90_us=_p90(samples.wall_ns) / 1000,
        cpu_median_us=statistics.median(samples.cpu_ns) / 1000,
        cpu_p90_us=_p90(samples.cpu_ns) / 1000,
        server_cpu_us=samples.server_cpu_ns / max(1, samples.calls) / 1000,
        samples=case.plan.samples,
        calls_per_sample=case.plan.inner * case.calls_per_inner,
    )


def _rounds(cases: list[Case[F]], seed: int) -> Iterator[Case[F]]:
    """Every case once per round, in a fresh shuffled order each round."""
    rng = random.Random(seed)
    for round_ in range(max(c.plan.samples for c in cases)):
        for case in rng.sample(cases, len(cases)):
            if round_ < case.plan.samples:
                yield case


def _settle() -> None:
    """Collect once and freeze the survivors, so later collections scan only new objects."""
    gc.collect()
    gc.freeze()


# -- async measurements ------------------------------------------------------------------


async def _batch(one: AsyncOne, calls: int) -> object:
    async with anyio.create_task_group() as group:
        for _ in range(calls):
            group.start_soon(one)
    return True


async def _sample_async(case: Case[AsyncOne], samples: Samples, stats: ServerStats) -> None:
    one, inner = case.one, case.plan.inner
    before = stats.read()
    cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
    for _ in range(inner):
        await one()
    wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
    _record(case, samples, before, stats.read())
    calls = inner * case.calls_per_inner
    samples.wall_ns.append((wall1 - wall0) / calls)
    samples.cpu_ns.append((cpu1 - cpu0) / calls)


async def _measure_async(
    cases: list[Case[AsyncOne]], warmups: dict[str, int], seed: int, stats: ServerStats
) -> list[Result]:
    for case in cases:
        for _ in range(warmups[case.key]):
            outcome = await case.one()
            if not case.expect(outcome):
                sys.exit(f"{case.key}: unexpected outcome {outcome!r:.300}")
    _settle()
    per_case = {case.key: Samples() for case in cases}
    try:
        for case in _rounds(cases, seed):
            await _sample_async(case, per_case[case.key], stats)
    finally:
        gc.unfreeze()
    return [summarize(case, per_case[case.key]) for case in cases]


def _async_cases(
    backend: str, client: KneoClient, pool: httpcore2.AsyncConnectionPool, url: str, plans: Plans
) -> list[Case[AsyncOne]]:
    run_url, page_url = url + RUN_PATH, url + PAGE_TARGET

    async def kneo_get() -> object:
        return await client.platform.runs.get(RUN_ID)

    async def kneo_page() -> object:
        return await client.platform.audit.list(limit=PAGE_EVENTS)

    async def raw(target: str) -> bytes:
        response = await pool.request("GET", target, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS)
        return response.content

    async def json_get() -> object:
        return json.loads(await raw(run_url))

    async def json_page() -> object:
        return json.loads(await raw(page_url))

    async def struct_get() -> object:
        return RUN_DECODER.decode(await raw(run_url))

    async def struct_page() -> object:
        return PAGE_DECODER.decode(await raw(page_url))

    pool_name = "httpcore2 AsyncConnectionPool"
    return _sequential_cases(
        backend,
        "KneoClient",
        pool_name,
        plans,
        {
            KNEO: (kneo_get, kneo_page),
            RAW_JSON: (json_get, json_page),
            RAW_MSGSPEC: (struct_get, struct_page),
        },
    )


def _concurrent_cases(
    backend: str, client: KneoClient, pool: httpcore2.AsyncConnectionPool, url: str, plans: Plans
) -> list[Case[AsyncOne]]:
    run_url = url + RUN_PATH

    async def kneo_get() -> None:
        await client.platform.runs.get(RUN_ID)

    async def struct_get() -> None:
        response = await pool.request(
            "GET", run_url, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS
        )
        RUN_DECODER.decode(response.content)

    async def kneo_batch() -> object:
        return await _batch(kneo_get, CONCURRENT_CALLS)

    async def raw_batch() -> object:
        return await _batch(struct_get, CONCURRENT_CALLS)

    plan = plans.concurrent
    return [
        Case(
            f"{backend}/concurrent/{KNEO}",
            backend,
            GET,
            KNEO,
            f"KneoClient(max_connections={POOL_SIZE})",
            kneo_batch,
            plan,
            CONCURRENT_CALLS,
        ),
        Case(
            f"{backend}/concurrent/{RAW_MSGSPEC}",
            backend,
            GET,
            RAW_MSGSPEC,
            f"httpcore2 AsyncConnectionPool(max_connections={POOL_SIZE}) + msgspec",
            raw_batch,
            plan,
            CONCURRENT_CALLS,
        ),
    ]


async def _run_async(backend: str, server: CannedServer, plans: Plans) -> list[Result]:
    profile = Profile(name="bench", url=server.url, api_key=API_KEY)
    with closing(ServerStats(server)) as stats, anyio.fail_after(PHASE_SECONDS):
        async with (
            KneoClient(profile, max_connections=POOL_SIZE) as client,
            httpcore2.AsyncConnectionPool(max_connections=POOL_SIZE, retries=0) as pool,
        ):
            sequential = _async_cases(backend, client, pool, server.url, plans)
            concurrent = _concurrent_cases(backend, client, pool, server.url, plans)
            warmups = _warmups(sequential, plans) | {c.key: 1 for c in concurrent}
            results = await _measure_async(sequential, warmups, 11, stats)
            results += await _measure_async(concurrent, warmups, 13, stats)
    return results


# -- blocking measurements ---------------------------------------------------------------


def _sample_sync(case: Case[SyncOne], samples: Samples, stats: ServerStats) -> None:
    one, inner = case.one, case.plan.inner
    before = stats.read()
    cpu0, wall0 = time.process_time_ns(), time.perf_counter_ns()
    for _ in range(inner):
        one()
    wall1, cpu1 = time.perf_counter_ns(), time.process_time_ns()
    _record(case, samples, before, stats.read())
    samples.wall_ns.append((wall1 - wall0) / inner)
    samples.cpu_ns.append((cpu1 - cpu0) / inner)


def _run_blocking(server: CannedServer, plans: Plans) -> list[Result]:
    profile = Profile(name="bench", url=server.url, api_key=API_KEY)
    run_url, page_url = server.url + RUN_PATH, server.url + PAGE_TARGET
    with (
        closing(ServerStats(server)) as stats,
        SyncKneoClient(profile, max_connections=POOL_SIZE) as client,
        httpcore2.ConnectionPool(max_connections=POOL_SIZE, retries=0) as pool,
    ):

        def raw(target: str) -> bytes:
            return pool.request(
                "GET", target, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS
            ).content

        calls: dict[str, tuple[SyncOne, SyncOne]] = {
            KNEO: (
                lambda: client.platform.runs.get(RUN_ID),
                lambda: client.platform.audit.list(limit=PAGE_EVENTS),
            ),
            RAW_JSON: (lambda: json.loads(raw(run_url)), lambda: json.loads(raw(page_url))),
            RAW_MSGSPEC: (
                lambda: RUN_DECODER.decode(raw(run_url)),
                lambda: PAGE_DECODER.decode(raw(page_url)),
            ),
        }
        cases = _sequential_cases(
            "blocking", "SyncKneoClient", "httpcore2 ConnectionPool", plans, calls
        )
        warmups = _warmups(cases, plans)
        for case in cases:
            for _ in range(warmups[case.key]):
                outcome = case.one()
                if not case.expect(outcome):
                    sys.exit(f"{case.key}: unexpected outcome {outcome!r:.300}")
        _settle()
        per_case = {case.key: Samples() for case in cases}
        try:
            for case in _rounds(cases, 17):
                _sample_sync(case, per_case[case.key], stats)
        finally:
            gc.unfreeze()
    return [summarize(case, per_case[case.key]) for case in cases]


# -- shared case tables --------------------------------------------------------------------


def _sequential_cases(
    backend: str,
    kneo_name: str,
    pool_name: str,
    plans: Plans,
    calls: dict[str, tuple[F, F]],
) -> list[Case[F]]:
    labels = {
        KNEO: kneo_name,
        RAW_JSON: f"{pool_name} + json.loads",
        RAW_MSGSPEC: f"{pool_name} + msgspec",
    }
    cases: list[Case[F]] = []
    for client, (get, page) in calls.items():
        cases.append(
            Case(
                f"{backend}/{GET}/{client}",
                backend,
                GET,
                client,
                labels[client],
                get,
                plans.small,
                expect=_is_run,
            )
        )
        cases.append(
            Case(
                f"{backend}/{PAGE}/{client}",
                backend,
                PAGE,
                client,
                labels[client],
                page,
                plans.page,
                expect=_is_page,
            )
        )
    return cases


def _warmups(cases: list[Case[Any]], plans: Plans) -> dict[str, int]:
    return {c.key: plans.warmup_small if c.call == GET else plans.warmup_page for c in cases}


# -- start-up ------------------------------------------------------------------------------

# The event loop's own library is imported first: the program needs it with or without us.
FIRST_CALL = """
import sys, time
url, key, run_id, mode = sys.argv[1:5]
if mode == "trio":
    import trio
elif mode == "asyncio":
    import asyncio
t0 = time.perf_counter_ns()
import kneo_client
t1 = time.perf_counter_ns()
profile = kneo_client.Profile(name="bench", url=url, api_key=key)
if mode == "blocking":
    with kneo_client.SyncKneoClient(profile) as client:
        t2 = time.perf_counter_ns()
        client.platform.runs.get(run_id)
        t3 = time.perf_counter_ns()
else:
    async def main():
        async with kneo_client.KneoClient(profile) as client:
            t2 = time.perf_counter_ns()
            await client.platform.runs.get(run_id)
            return t2, time.perf_counter_ns()
    t2, t3 = trio.run(main) if mode == "trio" else asyncio.run(main())
print(t1 - t0, t2 - t1, t3 - t2)
"""


@dataclass(frozen=True, slots=True)
class Startup:
    """Start-up figures in milliseconds (median, p90) over ``runs`` fresh processes."""

    runs: int
    process_ms: dict[str, tuple[float, float]]
    importtime_kneo_client_ms: tuple[float, float]
    heaviest_ms: dict[str, float]
    first_call_ms: dict[str, dict[str, tuple[float, float]]]


def _env() -> dict[str, str]:
    env = dict(os.environ)
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
        sys.exit(f"python {' '.join(args)[:80]} failed: {done.stderr[-2000:]}")
    return elapsed_ms, done


def parse_importtime(stderr: str, root: str = "kneo_client") -> dict[str, float]:
    """Cumulative µs per top-level package inside ``import root``, ``root`` itself included."""
    rows: list[tuple[int, str, int]] = []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _self, cumulative, name = line.split("|", 2)
        rows.append((len(name) - len(name.lstrip()) - 1, name.strip(), int(cumulative)))
    end = max(i for i, row in enumerate(rows) if row[0] == 0 and row[1] == root)
    start = end
    while start > 0 and rows[start - 1][0] > 0:
        start -= 1
    heaviest: dict[str, float] = {}
    for _depth, module, micros in rows[start : end + 1]:
        package = module.split(".")[0]
        heaviest[package] = max(heaviest.get(package, 0.0), float(micros))
    return heaviest


def _median_p90(values: list[float]) -> tuple[float, float]:
    return statistics.median(values), _p90(values)


def measure_startup(server: CannedServer, runs: int) -> Startup:
    """Fresh interpreters, one of each kind per round, rounds repeated ``runs`` times."""
    process: dict[str, list[float]] = {"python -c pass": [], "python -c 'import kneo_client'": []}
    importtime: list[dict[str, float]] = []
    phases = ("import kneo_client", "build client", "first runs.get", "process wall")
    first: dict[str, dict[str, list[float]]] = {
        mode: {phase: [] for phase in phases} for mode in BACKENDS
    }
    _timed_run(["-c", "import kneo_client, kneo_drivers.anyio, trio"])  # write bytecode once
    for _ in range(runs):
        process["python -c pass"].append(_timed_run(["-c", "pass"])[0])
        process["python -c 'import kneo_client'"].append(
            _timed_run(["-c", "import kneo_client"])[0]
        )
        done = _timed_run(["-X", "importtime", "-c", "import kneo_client"])[1]
        importtime.append(parse_importtime(done.stderr))
        for mode in BACKENDS:
            args = ["-c", FIRST_CALL, server.url, API_KEY, RUN_ID, mode]
            wall_ms, done = _timed_run(args)
            figures = [int(n) / 1e6 for n in done.stdout.split()] + [wall_ms]
            for phase, value in zip(phases, figures, strict=True):
                first[mode][phase].append(value)
    packages = {p for run in importtime for p in run} - {"kneo_client"}
    heaviest = {
        p: statistics.median(run.get(p, 0.0) for run in importtime) / 1000 for p in packages
    }
    top = dict(sorted(heaviest.items(), key=lambda kv: -kv[1])[:10])
    kneo = [run["kneo_client"] / 1000 for run in importtime]
    return Startup(
        runs=runs,
        process_ms={name: _median_p90(values) for name, values in process.items()},
        importtime_kneo_client_ms=_median_p90(kneo),
        heaviest_ms=top,
        first_call_ms={
            mode: {phase: _median_p90(values) for phase, values in figures.items()}
            for mode, figures in first.items()
        },
    )


# -- ratios --------------------------------------------------------------------------------


def floor_ratios(results: list[Result]) -> list[dict[str, Any]]:
    """Each kneo-client row against both raw floors on its backend, by medians."""
    by_key = {r.key: r for r in results}
    rows: list[dict[str, Any]] = []
    for r in results:
        if r.client != KNEO or "/concurrent/" in r.key:
            continue
        for floor_client in (RAW_MSGSPEC, RAW_JSON):
            floor = by_key[f"{r.backend}/{r.call}/{floor_client}"]
            rows.append(
                {
                    "backend": r.backend,
                    "call": r.call,
                    "client": r.label,
                    "floor": floor.label,
                    "wall_ratio": r.wall_median_us / floor.wall_median_us,
                    "cpu_ratio": r.cpu_median_us / floor.cpu_median_us,
                    "extra_cpu_us": r.cpu_median_us - floor.cpu_median_us,
                }
            )
    return rows


def concurrency_rows(results: list[Result]) -> list[dict[str, Any]]:
    """Throughput of each concurrent case, against its own sequential rate and the floor's."""
    by_key = {r.key: r for r in results}
    rows: list[dict[str, Any]] = []
    for r in results:
        if "/concurrent/" not in r.key:
            continue
        sequential = by_key[f"{r.backend}/{GET}/{r.client}"]
        floor = by_key[f"{r.backend}/concurrent/{RAW_MSGSPEC}"]
        rows.append(
            {
                "backend": r.backend,
                "client": r.label,
                "calls_per_s": 1e6 / r.wall_median_us,
                "vs_own_sequential": sequential.wall_median_us / r.wall_median_us,
                "vs_floor": floor.wall_median_us / r.wall_median_us,
                "result": r,
            }
        )
    return rows


# -- report --------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    uname = platform.uname()
    versions = {"kneo-client": kneo_proto.__version__}
    for name in ("httpcore2", "h11", "anyio", "trio", "msgspec"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "?"
    return {
        "cpu": f"{cpu_name()} ({os.cpu_count()} logical CPUs)",
        "system": f"{uname.system} {uname.release} {uname.machine}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        **versions,
        "server": "benchmarks.canned_server (asyncio, one separate process)",
    }


def _us(value: float) -> str:
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _sequential_table(results: list[Result]) -> list[str]:
    lines = [
        "## Sequential calls, µs per call",
        "",
        "| backend | call | client | wall median | wall p90 | CPU median | CPU p90 "
        "| server CPU | samples x calls |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if "/concurrent/" in r.key:
            continue
        lines.append(
            _row(
                [
                    r.backend,
                    f"`{r.call}`",
                    r.label,
                    _us(r.wall_median_us),
                    _us(r.wall_p90_us),
                    _us(r.cpu_median_us),
                    _us(r.cpu_p90_us),
                    _us(r.server_cpu_us),
                    f"{r.samples} x {r.calls_per_sample}",
                ]
            )
        )
    return lines


def _ratio_table(ratios: list[dict[str, Any]]) -> list[str]:
    lines = [
        "## kneo-client against its floors (ratios of medians)",
        "",
        "| backend | call | client | floor | wall ratio | CPU ratio | extra CPU µs/call |",
        "|---|---|---|---|---:|---:|---:|",
    ]
    for row in ratios:
        lines.append(
            _row(
                [
                    row["backend"],
                    f"`{row['call']}`",
                    row["client"],
                    row["floor"],
                    f"{row['wall_ratio']:.2f}",
                    f"{row['cpu_ratio']:.2f}",
                    f"{row['extra_cpu_us']:+.1f}",
                ]
            )
        )
    return lines


def _concurrency_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"## {CONCURRENT_CALLS} concurrent `runs.get`, pool of {POOL_SIZE}",
        "",
        "| backend | client | calls/s | x own sequential rate | x floor's calls/s "
        "| wall µs/call median | p90 | CPU µs/call median | p90 | server CPU µs/call "
        "| samples x calls |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        r: Result = row["result"]
        lines.append(
            _row(
                [
                    r.backend,
                    r.label,
                    f"{row['calls_per_s']:,.0f}",
                    f"{row['vs_own_sequential']:.2f}",
                    f"{row['vs_floor']:.2f}",
                    _us(r.wall_median_us),
                    _us(r.wall_p90_us),
                    _us(r.cpu_median_us),
                    _us(r.cpu_p90_us),
                    _us(r.server_cpu_us),
                    f"{r.samples} x {r.calls_per_sample}",
                ]
            )
        )
    return lines


def _startup_table(startup: Startup) -> list[str]:
    pass_ms = startup.process_ms["python -c pass"][0]
    import_ms = startup.process_ms["python -c 'import kneo_client'"][0]
    lines = [
        f"## Start-up, ms ({startup.runs} fresh processes each)",
        "",
        "| what | median | p90 |",
        "|---|---:|---:|",
    ]
    for name, (median, p90) in startup.process_ms.items():
        lines.append(_row([f"`{name}`, process wall", f"{median:.1f}", f"{p90:.1f}"]))
    lines.append(_row(["difference: `import kneo_client`", f"{import_ms - pass_ms:.1f}", ""]))
    median, p90 = startup.importtime_kneo_client_ms
    lines.append(_row(["`-X importtime`: kneo_client cumulative", f"{median:.1f}", f"{p90:.1f}"]))
    heaviest = ", ".join(f"{name} {ms:.1f}" for name, ms in startup.heaviest_ms.items())
    lines += ["", f"Heaviest packages inside `import kneo_client` (cumulative ms): {heaviest}."]
    lines += [
        "",
        "| first call in a fresh process | import kneo_client | build client "
        "| first runs.get | process wall |",
        "|---|---:|---:|---:|---:|",
    ]
    for mode, phases in startup.first_call_ms.items():
        client = "SyncKneoClient" if mode == "blocking" else f"KneoClient on {mode}"
        cells = [f"{m:.1f} (p90 {p:.1f})" for m, p in phases.values()]
        lines.append(_row([client, *cells]))
    return lines


def markdown(
    info: dict[str, str], run: dict[str, Any], results: list[Result], startup: Startup
) -> str:
    lines = ["# kneo-client end-to-end benchmark", ""]
    lines += [f"- {name}: {value}" for name, value in info.items()]
    lines.append(f"- run: {run['mode']}, {run['wall_seconds']:.1f} s")
    for table in (
        _sequential_table(results),
        _ratio_table(floor_ratios(results)),
        _concurrency_table(concurrency_rows(results)),
        _startup_table(startup),
    ):
        lines += ["", *table]
    return "\n".join(lines)


def as_json(
    info: dict[str, str], run: dict[str, Any], results: list[Result], startup: Startup
) -> str:
    concurrency = [
        {k: v for k, v in row.items() if k != "result"} | {"key": row["result"].key}
        for row in concurrency_rows(results)
    ]
    payload = {
        "machine": info,
        "run": run,
        "results": [asdict(r) for r in results],
        "floor_ratios": floor_ratios(results),
        "concurrency": concurrency,
        "startup": asdict(startup),
    }
    return json.dumps(payload, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_client", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="~10 s smoke run (CI)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    plans = QUICK if args.quick else DEFAULT
    started = time.perf_counter()
    with serve_canned(max_seconds=2 * PHASE_SECONDS) as server:
        results: list[Result] = []
        for backend in ("asyncio", "trio"):
            results += anyio.run(_run_async, backend, server, plans, backend=backend)
        results += _run_blocking(server, plans)
        startup = measure_startup(server, plans.startup_runs)
    run: dict[str, Any] = {
        "mode": "quick" if args.quick else "default",
        "wall_seconds": round(time.perf_counter() - started, 2),
    }
    info = machine()
    print(
        as_json(info, run, results, startup) if args.json else markdown(info, run, results, startup)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

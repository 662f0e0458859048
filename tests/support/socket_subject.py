"""The client side of the socket-fault tests (family B): one client per flavour, three calls.

``Subject`` wraps a ``KneoClient`` (asyncio or trio) or a ``SyncKneoClient`` (called in a
worker thread, so one async test body serves all three flavours) and makes the same three
calls on each: ``runs.get`` (GET), ``runs.create`` (a keyed POST, with the client's automatic
key) and ``Transport.request("PATCH", ...)``: the API declares no PATCH endpoint, and the
raw transport runs the same ``Call`` machinery (classification, retries, errors). Each call
returns an ``Outcome``: what came back or what was raised, the attempts the client reports
and those the server observed.

The oracles shared by every case live here too:
- ``check``: the class raised (exactly), the attempts (client-reported = server-observed),
  one request ID and one idempotency key on every attempt, a POST executed at most once and
  answered with its own run, a PATCH sent at most once, no partial or foreign result;
- ``Subject.settled``: the pool back to zero (httpcore's own ``repr`` plus every pooled
  connection idle), the async driver's gate full, and every faulted connection closed on the
  server's side within 1 s;
- ``Subject.network``: every timeout the pool handed its network backend (a recording
  wrapper around the pool's own), none of them None, and the bytes each connection read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import anyio
import anyio.to_thread
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_drivers._transport import httpcore
from kneo_drivers.anyio import AsyncDriver
from kneo_drivers.blocking import BlockingDriver
from kneo_proto import DEFAULT_MAX_RESPONSE_BYTES, KneoError, RetryPolicy
from tests.support.scripted_server import (
    RUN_ID,
    SPEC_ID,
    Script,
    ScriptedSocketServer,
    Seen,
    ok_body,
)

__all__ = [
    "API_KEY",
    "CASE_LIMIT",
    "Classes",
    "FAST",
    "FLAVOURS",
    "METHODS",
    "RETRIED_AFTER_SEND",
    "Flavour",
    "Method",
    "NetworkLog",
    "Outcome",
    "Subject",
    "Tally",
    "backend_fixture",
    "check",
    "expected",
    "run_case",
    "flavour_fixture",
]

Flavour = Literal["asyncio", "trio", "blocking"]
Method = Literal["GET", "POST", "PATCH"]
FLAVOURS: tuple[Flavour, ...] = ("asyncio", "trio", "blocking")
METHODS: tuple[Method, ...] = ("GET", "POST", "PATCH")
# Decision 1 of the plan: after a byte was sent, only idempotent verbs and keyed POSTs retry.
RETRIED_AFTER_SEND: dict[Method, bool] = {"GET": True, "POST": True, "PATCH": False}

API_KEY = "kneo-socket-key-0123456789"
FAST = RetryPolicy(max_attempts=3, base_delay=0.001, max_delay=0.005, jitter=0.0)
CASE_LIMIT = 15.0  # no single call may take longer: a hang fails the test, never blocks it
SETTLE_LIMIT = 1.0  # a faulted connection must be closed by then
PATCH_PATH = f"/v1/runs/{RUN_ID}"
PATCH_BODY = {"note": "n"}


# -- fixtures: every test runs for the three flavours ----------------------------------------


# A test module imports both fixtures below (with a noqa for F401); pytest registers them
# under their ``name``.


@pytest.fixture(params=FLAVOURS, name="flavour")
def flavour_fixture(request: pytest.FixtureRequest) -> Flavour:
    return cast(Flavour, request.param)


@pytest.fixture(name="anyio_backend")
def backend_fixture(flavour: Flavour) -> str:
    """Overrides ``tests/conftest.py``'s: the blocking client runs under asyncio, in a
    worker thread."""
    return "trio" if flavour == "trio" else "asyncio"


# -- what the pool's network backend was asked -----------------------------------------------


@dataclass
class StreamLog:
    """One connection the pool opened: its writes, the bytes its reads returned, and its
    socket (the backend's ``get_extra_info("socket")``: a ``socket.socket`` or a trio socket,
    for ``select``)."""

    writes: int = 0
    bytes_read: int = 0
    socket: Any = None


@dataclass
class NetworkLog:
    """Every timeout the pool handed its network backend, by phase, and every stream."""

    seen: Counter[str] = field(default_factory=Counter)
    unbounded: Counter[str] = field(default_factory=Counter)
    streams: list[StreamLog] = field(default_factory=list)

    def record(self, phase: str, timeout: float | None) -> None:
        self.seen[phase] += 1
        if timeout is None:
            self.unbounded[phase] += 1

    def opened(self, sock: Any = None) -> StreamLog:
        stream = StreamLog(socket=sock)
        self.streams.append(stream)
        return stream


class _RecordingAsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, log: NetworkLog) -> None:
        self._inner = inner
        self._log = log
        self._stream = log.opened(inner.get_extra_info("socket"))

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        self._log.record("read", timeout)
        data = await self._inner.read(max_bytes, timeout)
        self._stream.bytes_read += len(data)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        self._log.record("write", timeout)
        self._stream.writes += 1
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _RecordingAsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, inner: httpcore.AsyncNetworkBackend, log: NetworkLog) -> None:
        self._inner = inner
        self._log = log

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self._log.record("connect", timeout)
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _RecordingAsyncStream(stream, self._log)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _RecordingStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream, log: NetworkLog) -> None:
        self._inner = inner
        self._log = log
        self._stream = log.opened(inner.get_extra_info("socket"))

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self._log.record("read", timeout)
        data = self._inner.read(max_bytes, timeout)
        self._stream.bytes_read += len(data)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._log.record("write", timeout)
        self._stream.writes += 1
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _RecordingBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend, log: NetworkLog) -> None:
        self._inner = inner
        self._log = log

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self._log.record("connect", timeout)
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _RecordingStream(stream, self._log)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# -- one call's outcome ----------------------------------------------------------------------


@dataclass
class Outcome:
    """How one call ended.

    Attributes:
        method: The call's method.
        value: The run ID (GET, POST) or the raw body (PATCH) returned; None on error.
        error: What the call raised, or None.
        attempts: Attempts the client reported (on the result or on the error).
        request_id: The call's request ID (from the result or the error).
        idempotency_key: The POST's key.
        elapsed: Seconds the call took.
        server_attempts: Attempts the server observed while the call ran.
        sends: Connections the client wrote a request to while the call ran.
        bytes_read: Bytes the client's connections read while the call ran.
    """

    method: Method
    value: str | bytes | None
    error: BaseException | None
    attempts: int
    request_id: str | None
    idempotency_key: str | None
    elapsed: float
    server_attempts: int = 0
    sends: int = 0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return self.error is None


class _Result(Protocol):
    @property
    def attempts(self) -> int: ...
    @property
    def request_id(self) -> str: ...
    @property
    def idempotency_key(self) -> str | None: ...


def _done(method: Method, value: str | bytes, result: _Result, started: float) -> Outcome:
    return Outcome(
        method,
        value,
        None,
        result.attempts,
        result.request_id,
        result.idempotency_key,
        time.monotonic() - started,
    )


def _failed(method: Method, exc: Exception, elapsed: float) -> Outcome:
    if isinstance(exc, KneoError):
        return Outcome(
            method, None, exc, exc.attempts, exc.request_id, exc.idempotency_key, elapsed
        )
    return Outcome(method, None, exc, -1, None, None, elapsed)


class Subject:
    """One client of the given flavour against ``url``, with its pool under watch.

    Args:
        flavour: ``"asyncio"`` or ``"trio"`` (a ``KneoClient``; the test must run on that
            backend) or ``"blocking"`` (a ``SyncKneoClient`` called from a worker thread).
        url: The server's base URL.
        server: The scripted server behind ``url``, when there is one (for its counts).
        timeout: The per-phase timeout (connect, write, read, pool) of every attempt.
        policy: The retry policy; 3 attempts with a 1-5 ms backoff by default.
        max_response_bytes: The client's response size cap.
        max_connections: The pool's size.

    The retry budget is off: these tests count attempts call by call, and a budget drained
    by a long fault sweep would deny retries the classification allows (T06 and T25 test
    the budget).
    """

    def __init__(
        self,
        flavour: Flavour,
        url: str,
        *,
        server: ScriptedSocketServer | None = None,
        timeout: float = 5.0,
        policy: RetryPolicy = FAST,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_connections: int = 4,
    ) -> None:
        self.flavour = flavour
        self.server = server
        self.max_connections = max_connections
        self.network = NetworkLog()
        profile = Profile(name="sockets", url=url, api_key=API_KEY, timeout=timeout)
        options: dict[str, Any] = {
            "retry_policy": policy,
            "retry_budget": None,
            "max_response_bytes": max_response_bytes,
            "max_connections": max_connections,
        }
        self._async: KneoClient | None = None
        self._sync: SyncKneoClient | None = None
        if flavour == "blocking":
            self._sync = SyncKneoClient(profile, **options)
            pool: Any = self._blocking_driver()._pool
            pool._network_backend = _RecordingBackend(pool._network_backend, self.network)
        else:
            self._async = KneoClient(profile, **options)
            # The driver sizes its gate (some multiple of the pool's size): full is its size
            # before any call.
            gate = self._async_driver()._gate_for()
            assert gate is not None
            self._gate_size = gate.value
            pool = self._async_driver()._pool
            pool._network_backend = _RecordingAsyncBackend(pool._network_backend, self.network)

    def _async_driver(self) -> AsyncDriver:
        assert self._async is not None
        driver = self._async._transport._driver
        assert isinstance(driver, AsyncDriver)
        return driver

    def _blocking_driver(self) -> BlockingDriver:
        assert self._sync is not None
        driver = self._sync._transport._driver
        assert isinstance(driver, BlockingDriver)
        return driver

    @property
    def pool(self) -> httpcore.AsyncConnectionPool | httpcore.ConnectionPool:
        if self._sync is not None:
            return self._blocking_driver()._pool
        return self._async_driver()._pool

    @property
    def pool_retries(self) -> int:
        retries = self.pool._retries
        assert isinstance(retries, int)
        return retries

    # -- calls ----------------------------------------------------------------------------

    async def call(
        self, method: Method, *, deadline: float | None = None, lossy: bool = False
    ) -> Outcome:
        """Make one ``method`` call; what it raised is in the ``Outcome``, never raised.

        Calls made one after another get exact server counts; concurrent ones share them.
        ``lossy``: an attempt may never reach the server, so do not wait for it to.
        """
        before = self.server.attempts if self.server is not None else 0
        streams = len(self.network.streams)
        written = [s.writes for s in self.network.streams]
        read = [s.bytes_read for s in self.network.streams]
        with anyio.fail_after(CASE_LIMIT):
            if self._sync is not None:
                outcome = await anyio.to_thread.run_sync(
                    self._call_blocking, method, deadline, abandon_on_cancel=True
                )
            else:
                outcome = await self._call_async(method, deadline)
        if self.server is not None:
            # A call can end before the server has read its last request (the client read a
            # bad answer left in its buffer): give the server up to 1 s to catch up.
            until = time.monotonic() + SETTLE_LIMIT
            while not lossy and self.server.attempts - before < outcome.attempts:
                if time.monotonic() > until:
                    break
                await anyio.sleep(0.001)
            outcome.server_attempts = self.server.attempts - before
        now = self.network.streams
        outcome.sends = sum(s.writes > w for s, w in zip(now, written, strict=False))
        outcome.sends += sum(s.writes > 0 for s in now[streams:])
        outcome.bytes_read = sum(s.bytes_read - r for s, r in zip(now, read, strict=False))
        outcome.bytes_read += sum(s.bytes_read for s in now[streams:])
        return outcome

    async def _call_async(self, method: Method, deadline: float | None) -> Outcome:
        assert self._async is not None
        client = self._async if deadline is None else self._async.with_options(deadline=deadline)
        started = time.monotonic()
        try:
            if method == "GET":
                got = await client.platform.runs.get.raw(RUN_ID)
                return _done(method, got.parsed.run_id, got, started)
            if method == "POST":
                made = await client.platform.runs.create.raw({"spec_id": SPEC_ID})
                return _done(method, made.parsed.run_id, made, started)
            assert deadline is None, "Transport.request takes no per-call deadline"
            raw = await client._transport.request("PATCH", PATCH_PATH, json=PATCH_BODY)
            return _done(method, raw.content, raw, started)
        except Exception as exc:
            return _failed(method, exc, time.monotonic() - started)

    def _call_blocking(self, method: Method, deadline: float | None) -> Outcome:
        assert self._sync is not None
        client = self._sync if deadline is None else self._sync.with_options(deadline=deadline)
        started = time.monotonic()
        try:
            if method == "GET":
                got = client.platform.runs.get.raw(RUN_ID)
                return _done(method, got.parsed.run_id, got, started)
            if method == "POST":
                made = client.platform.runs.create.raw({"spec_id": SPEC_ID})
                return _done(method, made.parsed.run_id, made, started)
            assert deadline is None, "Transport.request takes no per-call deadline"
            raw = client._transport.request("PATCH", PATCH_PATH, json=PATCH_BODY)
            return _done(method, raw.content, raw, started)
        except Exception as exc:
            return _failed(method, exc, time.monotonic() - started)

    # -- oracles --------------------------------------------------------------------------

    def pool_problems(self) -> list[str]:
        """What shows a leak in a pool no call is using (empty when it is back to zero)."""
        pool = self.pool
        problems: list[str] = []
        summary = repr(pool)
        if "Requests: 0 active, 0 queued" not in summary:
            problems.append(f"requests left in the pool: {summary}")
        if len(pool.connections) > self.max_connections:
            problems.append(f"{len(pool.connections)} connections for {self.max_connections}")
        for connection in pool.connections:
            if connection.info() == "CONNECTING":
                problems.append(f"orphaned connection: {connection!r}")
            elif connection.is_closed():
                continue  # discarded by the driver: no socket, and the pool's next pass drops it
            elif not (connection.is_connected() and connection.is_idle()):
                problems.append(f"connection not idle: {connection!r} in {summary}")
        if self._async is not None:
            gate = self._async_driver()._gate
            assert gate is not None
            if (gate.value, gate.statistics().tasks_waiting) != (self._gate_size, 0):
                problems.append(f"gate not full: {gate.value} of {self._gate_size}")
        return problems

    async def settled(self) -> list[str]:
        """Pool problems, plus server connections that neither side closed though no request
        is awaited on them (a faulted connection the client kept), after at most
        ``SETTLE_LIMIT`` seconds for the closes to arrive."""
        problems = self.pool_problems()
        if self.server is None:
            return problems
        until = time.monotonic() + SETTLE_LIMIT
        while leftovers := self.leftovers():
            if time.monotonic() > until:
                problems.append(f"faulted connections left open: {leftovers}")
                break
            await anyio.sleep(0.005)
        return problems

    def leftovers(self) -> list[int]:
        """Server connections open, and not waiting for a next request."""
        assert self.server is not None
        waiting = self.server.waiting()
        return [c.number for c in self.server.open_connections() if c not in waiting]

    async def follow_up(self) -> Outcome:
        """A GET after a case: it must succeed (retries allowed; the case says how many)."""
        return await self.call("GET")

    async def aclose(self) -> None:
        if self._sync is not None:
            await anyio.to_thread.run_sync(self._sync.close)
        elif self._async is not None:
            await self._async.aclose()
        assert self.network.unbounded == Counter(), self.network.unbounded
        assert self.pool_retries == 0, f"httpcore retries {self.pool_retries}"


# -- what a case must end with ---------------------------------------------------------------


def expected(
    method: Method,
    faulted: int,
    error: Classes,
    *,
    retried: bool | None = None,
    max_attempts: int = FAST.max_attempts,
) -> tuple[Classes | None, int]:
    """The class raised (None: success) and the attempts, when the first ``faulted`` attempts
    of a ``method`` call meet a fault raising ``error``; ``retried`` defaults to the rule for
    a failure after sending (``RETRIED_AFTER_SEND``)."""
    if not (RETRIED_AFTER_SEND[method] if retried is None else retried):
        return error, 1
    if faulted < max_attempts:
        return None, faulted + 1
    return error, max_attempts


Classes = type[BaseException] | tuple[type[BaseException], ...]


def check(
    outcome: Outcome,
    server: ScriptedSocketServer | None,
    *,
    error: Classes | None,
    attempts: int,
    value: str | bytes | None = None,
    lost: bool = False,
) -> None:
    """Assert everything one call must show (see the module docstring); ``error`` is the
    exact class raised (or one of them), None for a success. ``lost``: an attempt may have
    been written into a connection the server had already closed, so the server may have
    seen fewer attempts than the client made (never more)."""
    where = f"{outcome.method}: {outcome.error!r}"
    if error is None:
        assert outcome.ok, where
    else:
        allowed = error if isinstance(error, tuple) else (error,)
        assert type(outcome.error) in allowed, where
    if outcome.error is not None:
        assert isinstance(outcome.error, KneoError), f"foreign exception: {where}"
        assert outcome.value is None, f"a failed call returned {outcome.value!r}"
    assert outcome.attempts == attempts, where
    assert outcome.request_id, where
    if outcome.method == "POST":
        assert outcome.idempotency_key, where
    if outcome.method == "PATCH":
        assert outcome.sends <= 1, f"PATCH sent {outcome.sends} times: {where}"
    if server is None:
        return
    if lost:
        assert outcome.server_attempts <= outcome.attempts, where
    else:
        assert outcome.server_attempts == outcome.attempts, where
    _check_identity(server, outcome, ordered=not lost)
    if outcome.ok:
        right = value if value is not None else _right_value(server, outcome)
        assert outcome.value == right, f"{outcome.value!r} is not the answer {right!r}"


def _right_value(server: ScriptedSocketServer, outcome: Outcome) -> str | bytes:
    if outcome.method == "POST":
        assert outcome.idempotency_key is not None
        run_id = server.run_for(outcome.idempotency_key)
        assert run_id is not None, f"no POST with key {outcome.idempotency_key} arrived"
        return run_id
    if outcome.method == "PATCH":
        return ok_body("PATCH")
    return RUN_ID


def _check_identity(
    server: ScriptedSocketServer, outcome: Outcome, *, ordered: bool = True
) -> list[Seen]:
    """One request ID and one key on every attempt the server read; attempts numbered in
    order; a POST executed at most once, a PATCH received at most once.

    Not ``ordered``: an attempt written into a connection the server was closing may be
    read by that connection's thread after the retry was read on a new one (T18's race),
    so the server's order of reading is not the client's order of sending; numbers must
    still be distinct."""
    seen = server.requests_with(outcome.request_id)
    assert len(seen) <= outcome.attempts, f"server read {len(seen)}: {outcome}"
    keys = {r.header("idempotency-key") for r in seen}
    numbers = [int(r.header("x-kneo-attempt") or 0) for r in seen]
    assert (numbers if ordered else sorted(numbers)) == sorted(set(numbers)), numbers
    assert all(1 <= n <= outcome.attempts for n in numbers), numbers
    if outcome.method == "POST":
        assert keys <= {outcome.idempotency_key}, keys
        assert outcome.idempotency_key is not None
        created = server.executions[outcome.request_id or ""]
        assert created <= 1, f"one POST created {created} runs: {outcome}"
    else:
        assert keys <= {None}, keys
    if outcome.method == "PATCH":
        received = server.patches[outcome.request_id or ""]
        assert received <= 1, f"PATCH received {received} times: {outcome}"
    return seen


@dataclass
class Tally:
    """The figures of one test: calls, their checks, and the server-vs-client attempts."""

    calls: int = 0
    failures: int = 0
    retried_to_success: int = 0
    client_attempts: int = 0
    server_attempts: int = 0
    follow_ups: int = 0
    follow_ups_ok: int = 0
    classes: Counter[str] = field(default_factory=Counter)

    def add(self, outcome: Outcome) -> None:
        self.calls += 1
        self.failures += not outcome.ok
        self.retried_to_success += outcome.ok and outcome.attempts > 1
        self.client_attempts += outcome.attempts
        self.server_attempts += outcome.server_attempts
        self.classes[type(outcome.error).__name__ if outcome.error else "ok"] += 1

    def add_follow_up(self, outcome: Outcome) -> None:
        self.follow_ups += 1
        self.follow_ups_ok += outcome.ok
        self.client_attempts += outcome.attempts
        self.server_attempts += outcome.server_attempts

    def summary(self) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in sorted(self.classes.items()))
        return (
            f"{self.calls} calls ({classes}); {self.retried_to_success} recovered by a retry; "
            f"server attempts - client attempts = {self.server_attempts - self.client_attempts}; "
            f"follow-ups {self.follow_ups_ok}/{self.follow_ups}"
        )


async def run_case(
    subject: Subject,
    server: ScriptedSocketServer,
    method: Method,
    script: Script,
    *,
    faulted: int,
    error: Classes,
    tally: Tally,
    on_accept: bool = False,
    retried: bool | None = None,
    value: str | bytes | None = None,
) -> Outcome:
    """One case: the first ``faulted`` attempts of a ``method`` call meet ``script``; the
    call ends as ``expected`` says and passes ``check``; the pool settles back to zero; a
    follow-up GET on the same client succeeds at its first attempt."""
    queue = server.on_accept if on_accept else server.on_request
    queue(*[script] * faulted)
    outcome = await subject.call(method)
    server.clear()
    want, attempts = expected(method, faulted, error, retried=retried)
    check(outcome, server, error=want, attempts=attempts, value=value)
    tally.add(outcome)
    problems = await subject.settled()
    assert problems == [], problems
    follow = await subject.follow_up()
    check(follow, server, error=None, attempts=1)
    tally.add_follow_up(follow)
    return outcome

"""Events, observers and logging through the clients (docs/usage.md, "Observability").

- Every driver reports the same events: the in-memory drivers, the httpcore drivers and the
  httpx drivers on loopback, each on asyncio, trio and blocking, for one scripted call
  history; and the async driver's gate reports its timeout as a pool-phase failure.
- Observers: one that raises never breaks a call and is logged once; ``with_options``
  replaces the observers of the derived client only; a non-callable one is refused.
- No secret: a canary API key and a canary proxy password never show in an event or in
  any log record at DEBUG (``tests/client/test_canary.py`` sweeps errors and reprs; this
  file adds what observers and the log see).
- The log lines (INFO: retries and failed calls; DEBUG: attempts with their query string,
  responses, finished calls, polls of ``wait_for_completion``) and ``KNEO_LOG`` in a fresh
  interpreter: one handler on the ``kneo_client`` logger, none on the root logger.
- The example of "### Observers" runs as written.
"""

from __future__ import annotations

import contextlib
import gc
import inspect
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from secrets import token_hex
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import anyio
import httpx
import msgspec
import pytest

from kneo_client import KneoClient, Profile, RetryPolicy, SyncKneoClient, load_profile
from kneo_client._observe import Observers
from kneo_client.events import (
    AttemptFailed,
    AttemptStarted,
    CallFailed,
    CallFinished,
    CallInfo,
    CallStarted,
    Event,
    Observer,
    ResponseReceived,
    RetryScheduled,
)
from kneo_client.testing import (
    Emulator,
    Fault,
    async_memory_driver,
    memory_driver,
    serve_emulator,
)
from kneo_proto import (
    FailureKind,
    KneoError,
    KneoNotFoundError,
    KneoProxyError,
    KneoTimeoutError,
    Phase,
    ProfileError,
)
from tests.loopback import closed_port_url

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")
Client = KneoClient | SyncKneoClient
FAST = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=0.0)
MEMORY_URL = "https://kneo.test"
TIMEOUT = 10.0  # what every client below allows an attempt (RunningEmulator.profile's default)
USAGE = Path(__file__).resolve().parents[2] / "docs" / "usage.md"


async def resolve(value: Awaitable[T] | T) -> T:
    """A client call's result, awaited for the async client."""
    if inspect.isawaitable(value):
        return cast(T, await value)
    return value


async def close(client: Client) -> None:
    if isinstance(client, KneoClient):
        await client.aclose()
    else:
        client.close()


def run(flavour: str, main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main`` on the flavour's event loop (a blocking client runs under asyncio)."""
    anyio.run(main, backend="trio" if flavour == "trio" else "asyncio")


def kinds(events: Iterable[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def memory_profile(emulator: Emulator, **fields: Any) -> Profile:
    return Profile(
        name="memory", url=MEMORY_URL, api_key=emulator.api_key, timeout=TIMEOUT, **fields
    )


@contextlib.asynccontextmanager
async def open_client(
    driver: str, flavour: str, emulator: Emulator, **options: Any
) -> AsyncIterator[Client]:
    """A client of ``flavour`` on ``driver`` ("memory", "httpcore" or "httpx") serving
    ``emulator``; the httpcore and httpx ones reach it over loopback."""
    options.setdefault("retry_policy", FAST)
    async with contextlib.AsyncExitStack() as stack:
        if driver == "memory":
            profile = memory_profile(emulator)
            blocking = flavour == "blocking"
            options["driver"] = (
                memory_driver(emulator) if blocking else async_memory_driver(emulator)
            )
        else:
            profile = stack.enter_context(serve_emulator(emulator, grace_period=1.0)).profile()
        if driver == "httpx" and flavour == "blocking":
            options["http_client"] = stack.enter_context(httpx.Client())
        elif driver == "httpx":
            options["http_client"] = await stack.enter_async_context(httpx.AsyncClient())
        if flavour == "blocking":
            yield stack.enter_context(SyncKneoClient(profile, **options))
        else:
            yield await stack.enter_async_context(KneoClient(profile, **options))


# -- every driver reports the same events ------------------------------------------------------

DRIVERS = [
    (driver, flavour)
    for driver in ("memory", "httpcore", "httpx")
    for flavour in ("asyncio", "trio", "blocking")
]
LISTED = "/v1/runs?limit=5&offset=0&sort_by=updated_at&sort_order=desc"
LIST = ("list_runs", "GET", "/v1/runs", LISTED)
CREATE = ("create_run", "POST", "/v1/runs", "/v1/runs?")
GET = ("get_run", "GET", "/v1/runs/{run_id}", "/v1/runs/run-missing?")
# (event, operation, method, route, path and query, keyed, the event's own fields)
EXPECTED: list[tuple[Any, ...]] = [
    ("CallStarted", *LIST, False, ()),
    ("AttemptStarted", *LIST, False, (("attempt", 1), ("timeout", TIMEOUT))),
    ("ResponseReceived", *LIST, False, (("attempt", 1), ("status", 503))),
    (
        "RetryScheduled",
        *LIST,
        False,
        (("attempt", 2), ("budget_left", 495), ("cause", 503), ("delay", 0.01)),
    ),
    ("AttemptStarted", *LIST, False, (("attempt", 2), ("timeout", TIMEOUT))),
    ("ResponseReceived", *LIST, False, (("attempt", 2), ("status", 200))),
    ("CallFinished", *LIST, False, (("attempts", 2), ("status", 200))),
    ("CallStarted", *CREATE, True, ()),
    ("AttemptStarted", *CREATE, True, (("attempt", 1), ("timeout", TIMEOUT))),
    ("ResponseReceived", *CREATE, True, (("attempt", 1), ("status", 201))),
    ("CallFinished", *CREATE, True, (("attempts", 1), ("status", 201))),
    ("CallStarted", *GET, False, ()),
    ("AttemptStarted", *GET, False, (("attempt", 1), ("timeout", TIMEOUT))),
    ("ResponseReceived", *GET, False, (("attempt", 1), ("status", 404))),
    ("CallFailed", *GET, False, (("attempts", 1), ("error", "KneoNotFoundError"))),
]
VARYING = ("call", "at", "duration", "elapsed", "request_id")  # clocks and generated IDs


def key_fields(event: Event) -> tuple[Any, ...]:
    """What must be the same whichever driver ran the call."""
    info = event.call
    url = urlsplit(info.url)
    own = {k: v for k, v in msgspec.structs.asdict(event).items() if k not in VARYING}
    if isinstance(event, CallFailed):
        own["error"] = type(event.error).__name__
    if info.max_attempts != FAST.max_attempts:
        own["max_attempts"] = info.max_attempts
    keyed = info.idempotency_key is not None
    shown = f"{url.path}?{url.query}"
    return (
        type(event).__name__,
        info.operation,
        info.method,
        info.route,
        shown,
        keyed,
        tuple(sorted(own.items())),
    )


@pytest.mark.parametrize(("driver", "flavour"), DRIVERS)
def test_every_driver_reports_the_same_events(driver: str, flavour: str) -> None:
    emulator = Emulator()
    events: list[Event] = []

    async def main() -> None:
        async with open_client(driver, flavour, emulator, observers=[events.append]) as client:
            emulator.faults.script("GET", "/v1/runs", Fault.error(503))
            await resolve(client.platform.runs.list(limit=5))
            await resolve(client.platform.runs.create({"spec_id": "my-spec"}))
            with pytest.raises(KneoNotFoundError):
                await resolve(client.platform.runs.get("run-missing"))

    run(flavour, main)
    assert [key_fields(event) for event in events] == EXPECTED
    for first, last in ((0, 7), (7, 11), (11, 15)):
        call = events[first].call
        assert all(event.call is call for event in events[first:last])
    finished = [e for e in events if isinstance(e, CallFinished)]
    assert [e.request_id for e in finished] == [e.call.request_id for e in finished]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_call_held_at_the_async_drivers_gate_fails_as_a_pool_connect_timeout(
    backend: str,
) -> None:
    """``max_connections=1`` lets two attempts in (one on the connection, one in the pool's
    queue); a third, with a shorter timeout, waits at the gate and gives up there."""
    emulator = Emulator()
    emulator.faults.always("GET", "/v1/runs", Fault.latency(0.5))
    held: list[Event] = []
    gated: list[Event] = []

    async def main() -> None:
        with serve_emulator(emulator, grace_period=1.0) as running:
            profile = running.profile(timeout=5.0)
            once = RetryPolicy(max_attempts=1)
            async with KneoClient(
                profile, max_connections=1, retry_policy=once, observers=[held.append]
            ) as client:
                late = client.with_options(timeout=0.1, observers=[gated.append])

                async def hold() -> None:
                    await client.platform.runs.list()

                async with anyio.create_task_group() as group:
                    group.start_soon(hold)
                    group.start_soon(hold)
                    await anyio.wait_all_tasks_blocked()
                    with pytest.raises(KneoTimeoutError, match="waited too long for a connection"):
                        await late.platform.runs.list()

    anyio.run(main, backend=backend)
    assert kinds(gated) == ["CallStarted", "AttemptStarted", "AttemptFailed", "CallFailed"]
    failed = gated[2]
    assert isinstance(failed, AttemptFailed)
    assert (failed.failure, failed.phase, failed.attempt) == (
        FailureKind.CONNECT_TIMEOUT,
        Phase.POOL,
        1,
    )
    assert 0.05 <= failed.duration < 2.0
    assert kinds(held).count("CallFinished") == 2
    assert "AttemptFailed" not in kinds(held)


# -- observers ---------------------------------------------------------------------------------


class HeadersBug:
    """An observer whose ``headers_for`` raises."""

    def __call__(self, event: Event) -> None:
        pass

    def headers_for(self, event: AttemptStarted) -> list[tuple[str, str]]:
        raise ValueError("headers bug")


def test_an_observer_that_raises_is_logged_once_and_the_others_see_every_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = Emulator()
    seen: list[Event] = []

    def broken(event: Event) -> None:
        raise RuntimeError("observer bug")

    caplog.set_level(logging.WARNING, logger="kneo_client")
    observers: list[Observer] = [broken, HeadersBug(), seen.append]
    with SyncKneoClient(
        memory_profile(emulator),
        driver=memory_driver(emulator),
        retry_policy=FAST,
        observers=observers,
    ) as client:
        emulator.faults.script("GET", "/v1/runs", Fault.error(503))
        for _ in range(4):
            assert client.platform.runs.list().runs == []
        with pytest.raises(KneoNotFoundError):
            client.platform.runs.get("run-missing")

    assert len(seen) == 7 + 3 * 4 + 4  # a retried call, three plain ones, a failed one
    assert kinds(seen).count("CallStarted") == 5
    assert kinds(seen)[-1] == "CallFailed"
    reports = [r for r in caplog.records if r.name == "kneo_client"]
    assert [(r.levelno, r.exc_info[1].__class__ if r.exc_info else None) for r in reports] == [
        (logging.WARNING, RuntimeError),
        (logging.WARNING, ValueError),
    ]
    assert "observer bug" in caplog.text
    assert "headers bug" in caplog.text


class TextHandler(logging.Handler):
    """Keeps each record as text only, as a stream handler would: no record (with its
    traceback, which holds the observer) outlives its ``emit``."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_a_new_observer_that_raises_is_logged_even_at_a_freed_ones_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Once per observer, not once per memory address: a fresh observer often takes the
    address of one freed just before (here, as a rule: same size, freed at once)."""
    handler = TextHandler()
    kneo_logger = logging.getLogger("kneo_client")
    monkeypatch.setattr(kneo_logger, "propagate", False)  # pytest keeps records it sees
    kneo_logger.addHandler(handler)
    info = CallInfo(
        operation="get_run",
        method="GET",
        route="/v1/runs/{run_id}",
        url=f"{MEMORY_URL}/v1/runs/r1",
        server_address="kneo.test",
        server_port=443,
        request_id="req-1",
        idempotency_key=None,
        max_attempts=3,
    )

    def make_broken(n: int) -> Callable[[Event], None]:
        def broken(event: Event) -> None:
            raise RuntimeError(f"observer bug {n}")

        return broken

    try:
        for n in range(3):
            observers = Observers([make_broken(n)])
            observers.emit(CallStarted(call=info, at=0.0))
            observers.emit(CallStarted(call=info, at=1.0))
            del observers
            gc.collect()
    finally:
        kneo_logger.removeHandler(handler)
    raised = [line for text in handler.lines for line in text.splitlines()]
    assert [line for line in raised if line.startswith("RuntimeError")] == [
        "RuntimeError: observer bug 0",
        "RuntimeError: observer bug 1",
        "RuntimeError: observer bug 2",
    ]


@pytest.mark.parametrize("flavour", ["asyncio", "trio", "blocking"])
def test_with_options_observers_replace_the_clients_for_the_derived_client_only(
    flavour: str,
) -> None:
    emulator = Emulator()
    base: list[Event] = []
    other: list[Event] = []

    async def main() -> None:
        async with open_client("memory", flavour, emulator, observers=[base.append]) as client:
            derived = client.with_options(observers=[other.append])
            await resolve(derived.platform.runs.list())
            assert (len(base), len(other)) == (0, 4)
            await resolve(client.platform.runs.list())
            assert (len(base), len(other)) == (4, 4)
            # Other options keep the observers of the client they derive from.
            await resolve(derived.with_options(timeout=5.0).platform.health.livez())
            await resolve(client.with_options(timeout=6.0).platform.health.livez())
            await resolve(client.with_options(observers=[]).platform.health.livez())
            await resolve(client.platform.health.livez())

    run(flavour, main)
    assert kinds(other) == ["CallStarted", "AttemptStarted", "ResponseReceived", "CallFinished"] * 2
    assert kinds(base) == ["CallStarted", "AttemptStarted", "ResponseReceived", "CallFinished"] * 3
    timeouts = [e.timeout for e in (*other, *base) if isinstance(e, AttemptStarted)]
    assert timeouts == [TIMEOUT, 5.0, TIMEOUT, 6.0, TIMEOUT]


@pytest.mark.parametrize("bad", [42, "print", None, [print]])
@pytest.mark.parametrize("client_class", [KneoClient, SyncKneoClient])
def test_a_non_callable_observer_is_refused_at_construction(
    client_class: type[Client], bad: object
) -> None:
    emulator = Emulator()
    blocking = client_class is SyncKneoClient
    driver = memory_driver(emulator) if blocking else async_memory_driver(emulator)
    with pytest.raises(TypeError, match="observers must be callables taking an event"):
        client_class(
            memory_profile(emulator),
            driver=driver,
            observers=[print, bad],  # type: ignore[list-item]  # what the test is about
        )


@pytest.mark.parametrize("client_class", [KneoClient, SyncKneoClient])
def test_with_options_refuses_a_non_callable_observer(client_class: type[Client]) -> None:
    emulator = Emulator()
    blocking = client_class is SyncKneoClient
    driver = memory_driver(emulator) if blocking else async_memory_driver(emulator)
    client = client_class(memory_profile(emulator), driver=driver)
    bad: Any = "not callable"
    with pytest.raises(TypeError, match="observers must be callables taking an event"):
        client.with_options(observers=[print, bad])
    anyio.run(close, client)


# -- no secret in an event or a log line -------------------------------------------------------

CANARY = "sk-canary-" + token_hex(16)  # the API key; fresh for every run
PROXY_PASSWORD = "pw-canary-" + token_hex(16)
SECRETS = (CANARY, PROXY_PASSWORD, CANARY[-12:], PROXY_PASSWORD[-12:])


def renderings(events: Iterable[Event], records: Iterable[logging.LogRecord]) -> list[str]:
    """Every event's repr (a failed call's error too) and every record as a handler sees it."""
    texts = []
    for event in events:
        texts.append(repr(event))
        if isinstance(event, CallFailed):
            texts += [str(event.error), repr(event.error)]
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    for record in records:
        texts += [formatter.format(record), repr(record.args), repr(vars(record))]
    return texts


def check_no_secret(texts: list[str]) -> None:
    leaks = [text for text in texts for secret in SECRETS if secret.lower() in text.lower()]
    assert not leaks, leaks[:3]


@pytest.mark.parametrize("flavour", ["asyncio", "blocking"])
def test_no_secret_in_events_or_debug_logs_over_the_memory_driver(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = Emulator(api_key=CANARY)
    events: list[Event] = []
    errors: list[KneoError] = []
    proxy = f"http://user:{PROXY_PASSWORD}@127.0.0.1:1"  # a driver has no pool: unused
    caplog.set_level(logging.DEBUG)

    async def attempt(call: Callable[[], object]) -> None:
        """Make the call (a blocking client's raises as it is made) and keep its error."""
        try:
            await resolve(call())
        except KneoError as exc:
            errors.append(exc)

    async def main() -> None:
        faults = emulator.faults
        async with open_client(
            "memory", flavour, emulator, observers=[events.append], proxy=proxy
        ) as client:
            faults.script("GET", "/v1/runs", Fault.error(503), Fault.reset_before_response())
            await attempt(lambda: client.platform.runs.list(limit=5))
            faults.script("POST", "/v1/runs", Fault.lost_response(), Fault.malformed_json())
            await attempt(lambda: client.platform.runs.create({"spec_id": "my-spec"}))
            await attempt(lambda: client.platform.runs.get("run-missing"))
            faults.always("GET", "/v1/readyz", Fault.error(503))
            await attempt(lambda: client.platform.health.readyz())
        wrong = Profile(name="wrong", url=MEMORY_URL, api_key=CANARY + "-wrong")
        driver = memory_driver(emulator) if flavour == "blocking" else async_memory_driver(emulator)
        wrong_client: Client = (SyncKneoClient if flavour == "blocking" else KneoClient)(
            wrong, driver=driver, observers=[events.append]
        )
        await attempt(lambda: wrong_client.platform.runs.list())
        await close(wrong_client)

    run(flavour, main)
    assert [type(e).__name__ for e in errors] == [
        "KneoDecodeError",
        "KneoNotFoundError",
        "KneoServiceUnavailableError",
        "KneoAuthError",
    ]
    assert {"RetryScheduled", "AttemptFailed", "CallFailed"} <= set(kinds(events))
    assert len(caplog.records) >= len(events) - kinds(events).count("CallStarted")
    check_no_secret(renderings(events, caplog.records))


@pytest.mark.parametrize("flavour", ["asyncio", "trio", "blocking"])
def test_no_secret_in_events_or_debug_logs_of_a_refusing_proxy(
    flavour: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A proxy with a password in its URL, where nothing listens: every attempt fails to
    connect, and neither the password nor the API key shows in what observers and logs see."""
    proxy = closed_port_url().replace("http://", f"http://user:{PROXY_PASSWORD}@")
    profile = Profile(name="proxied", url=MEMORY_URL, api_key=CANARY)
    events: list[Event] = []
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        client: Client
        if flavour == "blocking":
            client = SyncKneoClient(
                profile, proxy=proxy, retry_policy=FAST, observers=[events.append]
            )
        else:
            client = KneoClient(profile, proxy=proxy, retry_policy=FAST, observers=[events.append])
        try:
            with pytest.raises(KneoProxyError):
                await resolve(client.platform.runs.list())
        finally:
            await close(client)

    run(flavour, main)
    assert kinds(events) == [
        "CallStarted",
        *["AttemptStarted", "AttemptFailed", "RetryScheduled"] * 2,
        "AttemptStarted",
        "AttemptFailed",
        "CallFailed",
    ]
    assert {e.failure for e in events if isinstance(e, AttemptFailed)} == {FailureKind.CONNECT}
    assert [r for r in caplog.records if r.name == "kneo_client.transport"]
    check_no_secret(renderings(events, caplog.records))


# -- log lines ---------------------------------------------------------------------------------


def transport_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [
        (r.levelno, r.getMessage()) for r in caplog.records if r.name == "kneo_client.transport"
    ]


@pytest.mark.parametrize(
    ("fault", "cause"), [(Fault.error(503), "503"), (Fault.reset_before_response(), "network")]
)
def test_a_retry_is_logged_at_info_with_method_route_cause_attempt_delay_and_request_id(
    fault: Fault, cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    emulator = Emulator()
    caplog.set_level(logging.INFO, logger="kneo_client.transport")
    with SyncKneoClient(
        memory_profile(emulator), driver=memory_driver(emulator), retry_policy=FAST
    ) as client:
        emulator.faults.script("GET", "/v1/runs/{run_id}", fault, Fault.error(503))
        with pytest.raises(KneoError) as caught:
            client.platform.runs.get("run-missing")
    request_id = caught.value.sent_request_id
    assert transport_lines(caplog) == [
        (
            logging.INFO,
            f"GET /v1/runs/{{run_id}} -> {cause}; retrying in 0.010 s (attempt 2 of 3) "
            f"request_id={request_id}",
        ),
        (
            logging.INFO,
            f"GET /v1/runs/{{run_id}} -> 503; retrying in 0.020 s (attempt 3 of 3) "
            f"request_id={request_id}",
        ),
        (
            logging.INFO,
            f"GET /v1/runs/{{run_id}} failed after 3 attempt(s) in 0.030 s: KneoNotFoundError: "
            f"{caught.value.message} request_id={request_id}",
        ),
    ]


def test_debug_lines_show_each_attempt_with_its_query_string(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = Emulator()
    caplog.set_level(logging.DEBUG, logger="kneo_client.transport")
    with SyncKneoClient(
        memory_profile(emulator), driver=memory_driver(emulator), retry_policy=FAST
    ) as client:
        emulator.faults.script("GET", "/v1/runs", Fault.error(503))
        page = client.platform.runs.list.raw(limit=5)
    url = f"{MEMORY_URL}/v1/runs?limit=5&offset=0&sort_by=updated_at&sort_order=desc"
    rid = page.request_id
    lines = [line for _, line in transport_lines(caplog)]
    assert [re.sub(r"in [0-9.]+ ms", "in _ ms", line) for line in lines] == [
        f"GET {url} attempt 1 of 3 (timeout 10 s) request_id={rid}",
        f"GET {url} -> 503 in _ ms (attempt 1) request_id={rid}",
        f"GET /v1/runs -> 503; retrying in 0.010 s (attempt 2 of 3) request_id={rid}",
        f"GET {url} attempt 2 of 3 (timeout 10 s) request_id={rid}",
        f"GET {url} -> 200 in _ ms (attempt 2) request_id={rid}",
        f"GET /v1/runs finished: 200 after 2 attempt(s) in 0.010 s request_id={rid}",
    ]
    assert sum("limit=5" in line for line in lines) == 4


def test_wait_for_completion_logs_the_runs_status_at_debug_while_polling(
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator = Emulator()
    caplog.set_level(logging.DEBUG, logger="kneo_client.transport")
    with SyncKneoClient(memory_profile(emulator), driver=memory_driver(emulator)) as client:
        run_id = client.platform.runs.create({"spec_id": "my-spec"}).run_id
        done = client.platform.runs.wait_for_completion(run_id, timeout=60)
    polls = [line for _, line in transport_lines(caplog) if line.startswith("waiting for run")]
    statuses = [re.sub(r".*status=(\S+) after .*", r"\1", line) for line in polls]
    assert len(polls) >= 2
    assert all(line.startswith(f"waiting for run {run_id}: status=") for line in polls)
    assert statuses[0] == "queued"
    assert statuses[-1] == done.status == "completed"
    assert {level for level, line in transport_lines(caplog) if line in polls} == {logging.DEBUG}


# -- KNEO_LOG, in a fresh interpreter ----------------------------------------------------------

KNEO_LOG_INFO = """
import logging
from kneo_client import SyncKneoClient
from kneo_client.testing import Emulator, Fault, memory_driver

emulator = Emulator()
clients = [
    SyncKneoClient.from_profile(
        url="https://kneo.test", api_key=emulator.api_key, driver=memory_driver(emulator)
    )
    for _ in range(2)
]
emulator.faults.script("GET", "/v1/runs", Fault.error(503))
clients[1].platform.runs.list()
print(len(logging.getLogger("kneo_client").handlers), len(logging.getLogger().handlers))
"""

KNEO_LOG_OFF = """
import logging
from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Emulator, Fault, memory_driver

emulator = Emulator()
profile = Profile(name="p", url="https://kneo.test", api_key=emulator.api_key, log="info")
SyncKneoClient(profile, driver=memory_driver(emulator)).close()
before = len(logging.getLogger("kneo_client").handlers)
client = SyncKneoClient.from_profile(
    url="https://kneo.test", api_key=emulator.api_key, driver=memory_driver(emulator)
)
emulator.faults.script("GET", "/v1/runs", Fault.error(503))
client.platform.runs.list()
print(before, len(logging.getLogger("kneo_client").handlers), len(logging.getLogger().handlers))
"""


def fresh_python(source: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``source`` as a user with no configuration would, with ``env`` added."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("KNEO_")}
    clean |= {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"), **env}
    return subprocess.run(
        [sys.executable, "-W", "error", "-c", source],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )


def test_kneo_log_info_prints_the_retry_line_through_one_kneo_client_handler(
    tmp_path: Path,
) -> None:
    done = fresh_python(KNEO_LOG_INFO, tmp_path, KNEO_LOG="info")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]
    retry = (
        r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} kneo_client\.transport INFO GET /v1/runs -> 503; "
        r"retrying in 0\.\d{3} s \(attempt 2 of 3\) request_id=[0-9a-f-]{36}$"
    )
    assert len(re.findall(retry, done.stderr, flags=re.MULTILINE)) == 1, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # nothing at DEBUG, nothing twice


def test_kneo_log_off_removes_the_handler_and_prints_nothing(tmp_path: Path) -> None:
    done = fresh_python(KNEO_LOG_OFF, tmp_path, KNEO_LOG="off")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0", "0"]
    assert done.stderr == ""


def test_kneo_log_bogus_is_a_profile_error_naming_the_allowed_values(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("KNEO_LOG", "bogus")
    handlers = list(logging.getLogger("kneo_client").handlers)
    with pytest.raises(ProfileError) as caught:
        load_profile(url=MEMORY_URL, api_key="kneo-log-test-key-0123")
    message = str(caught.value)
    assert "log must be one of debug, info, warning, error, off, not 'bogus'" in message
    assert "set by KNEO_LOG" in message
    assert logging.getLogger("kneo_client").handlers == handlers


def test_log_and_tracing_come_from_the_environment_and_from_keywords(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("KNEO_LOG", "OFF")
    monkeypatch.setenv("KNEO_TRACING", "0")
    key = "kneo-log-test-key-0123"
    from_env = load_profile(url=MEMORY_URL, api_key=key)
    assert (from_env.log, from_env.tracing) == ("off", False)
    from_keywords = load_profile(url=MEMORY_URL, api_key=key, log="warning", tracing=True)
    assert (from_keywords.log, from_keywords.tracing) == ("warning", True)
    monkeypatch.delenv("KNEO_LOG")
    monkeypatch.delenv("KNEO_TRACING")
    emulator = Emulator()
    with SyncKneoClient.from_profile(
        url=MEMORY_URL, api_key=emulator.api_key, tracing=False, driver=memory_driver(emulator)
    ) as client:
        assert (client.profile.log, client.profile.tracing) == (None, False)


# -- docs/usage.md ---------------------------------------------------------------------------


def observers_example() -> str:
    section = USAGE.read_text(encoding="utf-8").split("\n### Observers\n", 1)[1]
    body = re.split(r"^#{2,3} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    found: list[str] = re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)
    (source,) = found
    return source


def test_usage_observers_example_runs_as_written(tmp_path: Path) -> None:
    source = observers_example()
    assert "with_options(observers=[])" in source
    done = fresh_python(source, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_usage_event_table_lists_every_event() -> None:
    section = USAGE.read_text(encoding="utf-8").split("## Observability", 1)[1]
    table = [line for line in section.splitlines() if line.startswith("| `")]
    documented = [line.split("`")[1] for line in table]
    assert documented == [
        cls.__name__
        for cls in (
            CallStarted,
            AttemptStarted,
            ResponseReceived,
            AttemptFailed,
            RetryScheduled,
            CallFinished,
            CallFailed,
        )
    ]

"""T23: interrupting the blocking client: Ctrl-C in a backoff sleep or a read, and a close
from another thread.

- ``KeyboardInterrupt`` delivered by a real ``SIGINT`` (``pthread_kill`` to the main
  thread) 0-5 ms into a backoff sleep after a 503, and 0-5 ms after the server received a
  request it answers 200 ms late (the main thread blocked in a socket read). The interrupt
  comes out of the call unchanged; the call sends nothing more; the retry budget is back at
  its level; the next call on the same client succeeds at its first attempt and gets its
  own answer (the client checks the echoed ``X-Request-ID``, so a reused half-read
  connection would show).
- One thread calls in a loop while another closes the client 0-20 ms in: every call ends
  with its answer or ``KneoClientClosedError`` (a transport error is tolerated only for
  the call cut mid-exchange), the caller stops within 1 s, later calls are refused, and
  every socket is closed. A call awaiting its response when ``close()`` runs ends with
  ``KneoClientClosedError``, is not retried, and leaves no connection open.

The test's own SIGINT handler raises ``KeyboardInterrupt`` only while a call is armed, so
a late signal can never abort the test session.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import signal
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from types import FrameType

import pytest

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Fault
from kneo_drivers.blocking import BlockingDriver
from kneo_proto import KneoClientClosedError, KneoError, KneoNetworkError, RetryPolicy
from tests.support.emulated import API_KEY, Emulated, path_of, run_id, serve
from tests.support.scale import scaled

pytestmark = [pytest.mark.plan("T23"), pytest.mark.timeout(120)]

INTERRUPTS = scaled(20)  # per phase (sleep, read)
CLOSES = scaled(40)
BACKOFF = 0.3
SERVER_DELAY = 0.2
RUN = run_id(1)
RNG = random.Random(23)


def jitter(steps: int = 50) -> float:
    return RNG.randrange(steps + 1) * 0.0001


class SleepSignal(BlockingDriver):
    """The blocking driver; each backoff sleep sets ``sleeping`` before it starts."""

    def __init__(self) -> None:
        super().__init__(max_connections=4)
        self.sleeping = threading.Event()

    def sleep(self, seconds: float) -> None:
        self.sleeping.set()
        super().sleep(seconds)


class Interrupter:
    """SIGINT to the main thread, raising KeyboardInterrupt only while armed."""

    def __init__(self) -> None:
        self.armed = False
        self.late = 0
        self._main = threading.main_thread().ident

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if not self.armed:
            self.late += 1
            return
        raise KeyboardInterrupt

    def after(self, ready: Callable[[], bool], delay: float) -> threading.Thread:
        """Send SIGINT ``delay`` seconds after ``ready()`` holds (from a helper thread)."""

        def fire() -> None:
            deadline = time.monotonic() + 5
            while not ready() and time.monotonic() < deadline:
                time.sleep(0.0005)
            time.sleep(delay)
            assert self._main is not None
            signal.pthread_kill(self._main, signal.SIGINT)

        thread = threading.Thread(target=fire, name="t23-interrupter")
        thread.start()
        return thread


@contextlib.contextmanager
def sigint_handler() -> Iterator[Interrupter]:
    interrupter = Interrupter()
    previous = signal.signal(signal.SIGINT, interrupter.handle)
    try:
        yield interrupter
    finally:
        signal.signal(signal.SIGINT, previous)


def interrupted_call(interrupter: Interrupter, call: Callable[[], object]) -> str:
    """Run ``call`` armed; return how it ended (the signal may land just after it)."""
    try:
        try:
            interrupter.armed = True
            call()
        except KeyboardInterrupt:
            return "interrupted"
        finally:
            interrupter.armed = False
    except KeyboardInterrupt:  # landed between the call's end and disarming
        return "interrupted after the call"
    return "finished"


def test_ctrl_c_in_a_backoff_sleep_or_a_read_propagates_and_the_client_stays_usable(
    figure: Callable[[str, str], None],
) -> None:
    emulated = Emulated()
    emulated.seed(runs=1)
    path = f"/v1/runs/{RUN}"
    driver = SleepSignal()
    outcomes: dict[str, Counter[str]] = {"sleep": Counter(), "read": Counter()}
    policy = RetryPolicy(base_delay=BACKOFF, jitter=0.0)
    with serve(emulated) as running, sigint_handler() as interrupter:
        profile = Profile(name="t23", url=running.url, api_key=API_KEY)
        client = SyncKneoClient(profile, retry_policy=policy, driver=driver)
        budget = client.retry_budget
        assert budget is not None
        assert budget.withdraw(50)
        try:
            for n in range(2 * INTERRUPTS):
                phase = "sleep" if n % 2 == 0 else "read"
                request_id = f"{phase}-{n}"
                if phase == "sleep":
                    emulated.emulator.faults.script("GET", path, Fault.error(503))
                    driver.sleeping.clear()
                    ready: Callable[[], bool] = driver.sleeping.is_set
                else:
                    emulated.emulator.faults.script("GET", path, Fault.latency(SERVER_DELAY))
                    ready = arrived(emulated, request_id)
                level = budget.available
                timer = interrupter.after(ready, jitter())
                bound = client.with_options(request_id=request_id).platform.runs.get
                outcomes[phase][interrupted_call(interrupter, partial(bound, RUN))] += 1
                timer.join()
                assert budget.available == level, f"{request_id}: tokens not returned"
                follow_up = client.platform.runs.get.raw(RUN)
                assert follow_up.attempts == 1
            time.sleep(max(BACKOFF, SERVER_DELAY) + 0.05)  # when a retry would have come
        finally:
            client.close()
    attempts = Counter(r.header("x-request-id") for r in emulated.log)
    late = {rid: n for rid, n in attempts.items() if rid and rid[0] in "sr" and n > 1}
    figure(
        "T23",
        f"SIGINT 0-5 ms into {INTERRUPTS} backoff sleeps {dict(outcomes['sleep'])} and "
        f"{INTERRUPTS} reads {dict(outcomes['read'])}: KeyboardInterrupt propagated, attempts "
        f"after the interrupt {sum(late.values())}, budget restored, follow-up calls "
        f"{2 * INTERRUPTS}/{2 * INTERRUPTS} at their first attempt",
    )
    assert late == {}
    assert outcomes["sleep"]["interrupted"] == INTERRUPTS
    assert outcomes["read"]["interrupted"] >= INTERRUPTS // 2


def arrived(emulated: Emulated, request_id: str) -> Callable[[], bool]:
    return lambda: any(r.header("x-request-id") == request_id for r in emulated.log)


def requests_to(emulated: Emulated, path: str) -> int:
    return sum(path_of(r) == path for r in emulated.log)


def open_sockets() -> int | None:
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    count = 0
    for fd in fds:
        with contextlib.suppress(OSError):
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def caller(client: SyncKneoClient, ended: list[str], stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            client.platform.runs.get(RUN)
        except KneoClientClosedError as error:
            ended.append("closed" if error.attempts == 0 else "closed mid-call")
            return
        except KneoNetworkError as error:
            ended.append(f"network error ({error.kind})")
        except KneoError as error:
            ended.append(f"unexpected {type(error).__name__}")
            return
        except BaseException as error:
            ended.append(f"foreign {type(error).__name__}: {error}")
            return


def leftover_connections(client: SyncKneoClient) -> int:
    """Connections still in the closed client's pool; closes them (the suite stays clean)."""
    driver = client._transport._driver
    assert isinstance(driver, BlockingDriver)
    left = len(driver._pool.connections)
    driver._pool.close()
    return left


def test_a_call_awaiting_its_response_ends_when_the_client_is_closed() -> None:
    emulated = Emulated()
    emulated.seed(runs=1)
    path = f"/v1/runs/{RUN}"
    ended: list[BaseException | None] = []
    with serve(emulated) as running:
        client = SyncKneoClient(Profile(name="t23", url=running.url, api_key=API_KEY))
        emulated.emulator.faults.script("GET", path, Fault.latency(SERVER_DELAY))

        def call() -> None:
            try:
                client.platform.runs.get(RUN)
            except BaseException as error:
                ended.append(error)
            else:
                ended.append(None)

        thread = threading.Thread(target=call, name="t23-in-flight")
        thread.start()
        while not requests_to(emulated, path):  # the request reached the server
            time.sleep(0.0005)
        client.close()
        thread.join(5.0)
        left = leftover_connections(client)
    assert requests_to(emulated, path) == 1, "the call was retried after close()"
    assert left == 0, "a connection was opened on the closed pool"
    assert len(ended) == 1
    assert isinstance(ended[0], KneoClientClosedError)


def test_closing_the_client_while_another_thread_calls(
    figure: Callable[[str, str], None],
) -> None:
    emulated = Emulated()
    emulated.seed(runs=1)
    endings: Counter[str] = Counter()
    slowest = 0.0
    leaked = 0
    with serve(emulated) as running, warnings.catch_warnings(record=True) as caught:
        # A leaked socket would warn at garbage collection: record the warnings and count them.
        warnings.simplefilter("always", ResourceWarning)
        baseline = open_sockets()
        for _ in range(CLOSES):
            client = SyncKneoClient(Profile(name="t23", url=running.url, api_key=API_KEY))
            ended: list[str] = []
            stop = threading.Event()
            thread = threading.Thread(target=caller, args=(client, ended, stop), name="t23-caller")
            thread.start()
            time.sleep(jitter(200))
            started = time.monotonic()
            client.close()
            thread.join(1.0)
            slowest = max(slowest, time.monotonic() - started)
            stop.set()
            thread.join(5.0)
            assert not thread.is_alive(), "the caller hung after close"
            leaked += leftover_connections(client) > 0
            endings.update(ended)
            with pytest.raises(KneoClientClosedError):
                client.platform.runs.get(RUN)
            del client, thread
            gc.collect()
        left = wait_for_sockets(baseline)
    unclosed = sum(issubclass(w.category, ResourceWarning) for w in caught)
    figure(
        "T23",
        f"close from another thread {CLOSES}x, 0-20 ms into a calling loop: endings "
        f"{dict(endings)}, foreign exceptions 0, slowest close-to-caller-stopped "
        f"{slowest * 1000:.0f} ms; closed pools left holding a new connection {leaked}/"
        f"{CLOSES} and sockets never closed (found by the garbage collector) {unclosed}"
        f", sockets left open {left}",
    )
    assert not [e for e in endings if e.startswith(("foreign", "unexpected"))], endings
    assert slowest < 1.0
    assert left == 0
    assert leaked == 0, "a closed client's pool held a connection opened after close()"
    assert unclosed == 0


def wait_for_sockets(baseline: int | None) -> int:
    if baseline is None:
        return 0
    deadline = time.monotonic() + 2.0
    while (open_sockets() or 0) > baseline and time.monotonic() < deadline:
        time.sleep(0.01)
    return max(0, (open_sockets() or 0) - baseline)

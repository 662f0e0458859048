"""What an embedder writes around a driver (see docs/embedding.md).

``Client`` holds one ``ClientConfig`` and one retry budget for every call it makes, and
drives the two pure loops of ``kneo_proto``, ``PageWalk`` and ``RunPoll``, over any driver
with a ``clock``, ``execute`` and ``sleep``: both example drivers qualify.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from kneo_proto import (
    Call,
    CallOptions,
    ClientConfig,
    Clock,
    Failed,
    FetchStatus,
    Finished,
    KneoError,
    Operation,
    PageWalk,
    RetryBudget,
    RunDone,
    RunPoll,
    Sleep,
    TokenBucket,
    endpoints,
    page_of,
)
from kneo_proto.models import RunStatusResponse

R = TypeVar("R")


class Driver(Protocol):
    """A blocking driver, as ``SyncKneoClient(profile, driver=...)`` also accepts."""

    clock: Clock

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end: return its ``Finished`` or raise its ``KneoError``."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait between attempts."""
        ...


class LockedTokenBucket(TokenBucket):
    """A ``TokenBucket`` that the threads sharing one client may draw on at once."""

    def __init__(self, budget: RetryBudget | None = None) -> None:
        super().__init__(budget)
        self._lock = threading.Lock()

    def withdraw(self, cost: int) -> bool:
        """Take ``cost`` tokens atomically; take none and return False if too few are left."""
        with self._lock:
            return super().withdraw(cost)

    def deposit(self, amount: int) -> None:
        """Put ``amount`` tokens back atomically, never above capacity."""
        with self._lock:
            super().deposit(amount)


@dataclass
class Client:
    """One platform, one driver, and one retry budget that every call draws on."""

    config: ClientConfig
    driver: Driver
    budget: TokenBucket = field(default_factory=LockedTokenBucket)

    def call(self, operation: Operation[R], options: CallOptions | None = None) -> Finished[R]:
        """Run ``operation`` through all its attempts; raise its ``KneoError`` if it fails."""
        call = Call(
            operation, self.config, clock=self.driver.clock, options=options, budget=self.budget
        )
        return self.driver.execute(call)

    def iter_runs(self, page_size: int = 100) -> Iterator[RunStatusResponse]:
        """Yield every run, holding one page in memory at a time."""
        walk = PageWalk(page_size=page_size)
        while (page_request := walk.next_page()) is not None:
            limit, offset = page_request
            listed = self.call(endpoints.list_runs(limit=limit, offset=offset)).result
            page = page_of(listed, "runs")
            walk.receive_page(page)  # raises KneoPaginationError if the server loops
            yield from page.items

    def wait_for_run(
        self, run_id: str, timeout: float | None = None, poll_interval: float = 1.0
    ) -> RunStatusResponse:
        """Poll a run until it is terminal; raise ``KneoWaitTimeoutError`` after ``timeout``."""
        poll = RunPoll(
            run_id, clock=self.driver.clock, timeout=timeout, poll_interval=poll_interval
        )
        while True:
            match poll.next_action():
                case FetchStatus(deadline=deadline):  # each poll gets only the time left
                    try:
                        got = self.call(endpoints.get_run(run_id), CallOptions(deadline=deadline))
                        poll.receive_status(got.result)
                    except KneoError as error:
                        poll.receive_error(error)
                case Sleep(seconds=seconds):
                    self.driver.sleep(seconds)
                case RunDone(run=run):
                    done: RunStatusResponse = run
                    return done
                case Failed(error=error):
                    raise error

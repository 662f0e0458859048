"""Case 5: what ``wait_for_completion`` costs per poll, beside a hand-written polling loop.

Each wait asks for a fresh run ``poll-{N}-{i}``, which the canned server answers as
``"running"`` for ``N`` polls and ``"completed"`` on the next: ``N + 1`` requests per wait.
kneo-client waits with ``poll_interval=0`` (allowed: the interval need only be finite and
not negative), so each of its sleeps is a zero-second one (``time.sleep(0)``, or an event
loop checkpoint with ``anyio.sleep(0)``). The floor is the loop a user would write: a raw
httpcore2 GET, a ``msgspec`` decode into the same Struct, a status check against the same
terminal set, and the same zero-second sleep, until the run is terminal. No real time is
slept in either, so the CPU per poll is all polling overhead plus the request itself.
"""

from __future__ import annotations

import itertools
import time

import anyio

from benchmarks.peers import (
    KNEO,
    RAW_EXTENSIONS,
    RAW_HEADERS,
    RAW_MSGSPEC,
    RUN_DECODER,
    AsyncRig,
    SyncRig,
    is_run,
)
from benchmarks.sampling import AsyncOne, Case, Plan, SyncOne
from kneo_proto import DEFAULT_TERMINAL_STATUSES

__all__ = ["WAIT", "wait_cases_async", "wait_cases_sync"]

WAIT = "wait_for_completion"
_RUN_NUMBERS = itertools.count()  # every wait of the process polls a run of its own


def _run_id(polls: int) -> str:
    return f"poll-{polls}-{next(_RUN_NUMBERS)}"


def wait_cases_sync(rig: SyncRig, polls: int, plan: Plan) -> list[Case[SyncOne]]:
    """``SyncKneoClient``'s wait over ``polls + 1`` requests, and the raw loop's."""

    def kneo_wait() -> object:
        return rig.kneo.platform.runs.wait_for_completion(_run_id(polls), poll_interval=0.0)

    def raw_wait() -> object:
        url = f"{rig.url}/v1/runs/{_run_id(polls)}"
        while True:
            response = rig.pool.request("GET", url, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS)
            run = RUN_DECODER.decode(response.content)
            if run.status in DEFAULT_TERMINAL_STATUSES:
                return run
            time.sleep(0)

    return [
        Case("blocking", WAIT, KNEO, "SyncKneoClient", kneo_wait, plan, is_run, polls + 1),
        Case(
            "blocking",
            WAIT,
            RAW_MSGSPEC,
            "httpcore2 ConnectionPool + msgspec, poll loop",
            raw_wait,
            plan,
            is_run,
            polls + 1,
        ),
    ]


def wait_cases_async(backend: str, rig: AsyncRig, polls: int, plan: Plan) -> list[Case[AsyncOne]]:
    """``wait_cases_sync`` for ``KneoClient`` and an async raw pool."""

    async def kneo_wait() -> object:
        return await rig.kneo.platform.runs.wait_for_completion(_run_id(polls), poll_interval=0.0)

    async def raw_wait() -> object:
        url = f"{rig.url}/v1/runs/{_run_id(polls)}"
        while True:
            response = await rig.pool.request(
                "GET", url, headers=RAW_HEADERS, extensions=RAW_EXTENSIONS
            )
            run = RUN_DECODER.decode(response.content)
            if run.status in DEFAULT_TERMINAL_STATUSES:
                return run
            await anyio.sleep(0)  # noqa: ASYNC115 - as kneo-client's driver sleeps 0 s

    raw_label = "httpcore2 AsyncConnectionPool + msgspec, poll loop"
    return [
        Case(backend, WAIT, KNEO, "KneoClient", kneo_wait, plan, is_run, polls + 1),
        Case(backend, WAIT, RAW_MSGSPEC, raw_label, raw_wait, plan, is_run, polls + 1),
    ]

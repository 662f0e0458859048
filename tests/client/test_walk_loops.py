"""The facades' loops around ``ListWalk`` and ``RunWait`` (``kneo_client/_walking.py``): one
DEBUG line per poll, an iterator interrupted mid-fetch says so instead of ending quietly, and
a list binding names the item type its endpoint declares."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import msgspec
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client._bind import paginate
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import KneoStateError, Request, Response, endpoints
from kneo_proto.models import RunStatusResponse, TraceEvent

PROFILE = Profile(name="t", url="https://kneo.test", api_key="kneo_walk_loops_0123456789")
STATUSES = ["queued", "running", "completed"]
LINES = [
    "waiting for run run-1: status=queued after 0.0 s",
    "waiting for run run-1: status=running after 1.5 s",
    "waiting for run run-1: status=completed after 3.0 s",
]


def run_statuses(statuses: list[str]) -> Iterator[Response]:
    for status in statuses:
        yield Response(200, (), msgspec.json.encode({"run_id": "run-1", "status": status}))


def poll_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "kneo_client.transport" and record.levelno == logging.DEBUG
        if record.getMessage().startswith("waiting for run")
    ]


def test_wait_for_completion_logs_one_debug_line_per_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = run_statuses(STATUSES)
    driver = MemoryDriver(lambda request: next(answers))
    with (
        caplog.at_level(logging.DEBUG, logger="kneo_client.transport"),
        SyncKneoClient(PROFILE, driver=driver) as client,
    ):
        done = client.platform.runs.wait_for_completion("run-1", poll_interval=1.5)
    assert done.status == "completed"
    assert poll_lines(caplog) == LINES


@pytest.mark.anyio
async def test_async_wait_for_completion_logs_one_debug_line_per_poll(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = run_statuses(STATUSES)
    driver = AsyncMemoryDriver(lambda request: next(answers))
    with caplog.at_level(logging.DEBUG, logger="kneo_client.transport"):
        async with KneoClient(PROFILE, driver=driver) as client:
            done = await client.platform.runs.wait_for_completion("run-1", poll_interval=1.5)
    assert done.status == "completed"
    assert poll_lines(caplog) == LINES


def test_wait_for_completion_logs_nothing_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    answers = run_statuses(STATUSES)
    with (
        caplog.at_level(logging.INFO, logger="kneo_client.transport"),
        SyncKneoClient(PROFILE, driver=MemoryDriver(lambda request: next(answers))) as client,
    ):
        client.platform.runs.wait_for_completion("run-1", poll_interval=1.5)
    assert poll_lines(caplog) == []


class Interrupting:
    """Serves pages of two runs, out of ten; the second page request is interrupted."""

    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: Request) -> Response:
        self.requests += 1
        if self.requests == 2:
            raise KeyboardInterrupt
        runs = [{"run_id": f"run-{n}", "status": "completed"} for n in range(2)]
        body = {"runs": runs, "total": 10, "limit": 2, "offset": 0}
        return Response(200, (), msgspec.json.encode(body))


def test_an_iterator_interrupted_mid_fetch_refuses_to_go_on_as_if_complete() -> None:
    """Ending quietly after an interrupt would pass a partial listing off as the whole."""
    server = Interrupting()
    with SyncKneoClient(PROFILE, driver=MemoryDriver(server)) as client:
        runs = client.platform.runs.iter_all(limit=2)
        assert [next(runs).run_id, next(runs).run_id] == ["run-0", "run-1"]
        with pytest.raises(KeyboardInterrupt):
            next(runs)
        with pytest.raises(KneoStateError, match="abandoned in the middle of a fetch"):
            next(runs)
    assert server.requests == 2


def test_a_list_binding_names_the_item_type_its_endpoint_declares() -> None:
    assert paginate(endpoints.list_runs, RunStatusResponse).item is RunStatusResponse
    with pytest.raises(TypeError, match="list_runs lists RunStatusResponse, not TraceEvent"):
        paginate(endpoints.list_runs, TraceEvent)
    with pytest.raises(TypeError, match="get_run lists nothing, not RunStatusResponse"):
        paginate(endpoints.get_run, RunStatusResponse)

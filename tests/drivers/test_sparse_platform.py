"""A platform that leaves out, or sends ``null`` for, every field kneo-client does not need
(ADR 0011): a whole workflow still works on every driver, and a strict client refuses it.

``spec/`` was written from the reference, which names few response fields; its "required"
fields are a guess. Here a rewrite of the emulator's replies (``Emulator.rewrite``) removes
(``omit``) or nulls (``null``) every response field that is essential in no model, including
the paging fields, so a list has no ``total``. The async client runs on asyncio and trio,
the blocking one in a thread-free loop, each over loopback and in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec
import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient
from kneo_client.testing import Reply, async_memory_driver, memory_driver
from kneo_proto import KneoDecodeError, Request, Response, RetryPolicy, models
from kneo_proto.models import UNSET, KneoModel
from kneo_proto.models._strict import essential_fields
from tests.support.emulated import (
    API_KEY,
    MEMORY_URL,
    POLL_INTERVAL,
    Emulated,
    replace_response,
    serve,
)

pytestmark = pytest.mark.timeout(30)

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
WAIT_LIMIT = 5.0
RUNS, AUDIT_EVENTS = 7, 12


def _droppable() -> frozenset[str]:
    """Every response field name that is essential in no model."""
    found = [getattr(models, name) for name in models.__all__]
    structs = [m for m in found if isinstance(m, type) and issubclass(m, KneoModel)]
    names = {f.name for m in structs for f in msgspec.structs.fields(m)}
    essential = {name for m in structs for name in essential_fields(m)}
    return frozenset(names - essential)


DROPPABLE = _droppable()
# ``environment`` names a policy (essential there) but is only a detail of a run.
DROPPABLE_FROM_RUNS = DROPPABLE | {"environment"}


def _thin(value: Any, mode: str, drop: frozenset[str]) -> Any:
    if isinstance(value, list):
        return [_thin(item, mode, drop) for item in value]
    if not isinstance(value, dict):
        return value
    if mode == "omit":
        return {k: _thin(v, mode, drop) for k, v in value.items() if k not in drop}
    return {k: None if k in drop else _thin(v, mode, drop) for k, v in value.items()}


class SparseProxy:
    """Rewrites the platform's replies: every droppable field of a 2xx body omitted or
    nulled."""

    def __init__(self, mode: str) -> None:
        self.mode = mode

    def __call__(self, request: Request, reply: Reply) -> Reply:
        answer = reply.response
        if not 200 <= answer.status < 300:
            return reply
        drop = DROPPABLE_FROM_RUNS if request.target.startswith("/v1/runs") else DROPPABLE
        body = msgspec.json.encode(_thin(msgspec.json.decode(answer.body), self.mode, drop))
        headers = [(k, v) for k, v in answer.headers if k.lower() != "content-length"]
        return replace_response(reply, Response(answer.status, tuple(headers), body))


@dataclass
class Sparse:
    emulated: Emulated
    proxy: SparseProxy
    url: str
    memory: bool

    @property
    def profile(self) -> Profile:
        return Profile(name="sparse", url=self.url, api_key=API_KEY)

    def async_client(self, **options: Any) -> KneoClient:
        driver = async_memory_driver(self.emulated.emulator) if self.memory else None
        return KneoClient(self.profile, retry_policy=FAST, driver=driver, **options)

    def sync_client(self, **options: Any) -> SyncKneoClient:
        driver = memory_driver(self.emulated.emulator) if self.memory else None
        return SyncKneoClient(self.profile, retry_policy=FAST, driver=driver, **options)


@pytest.fixture(params=["omit-loopback", "omit-memory", "null-loopback", "null-memory"])
def sparse(request: pytest.FixtureRequest) -> Iterator[Sparse]:
    mode, where = str(request.param).split("-")
    emulated = Emulated()
    emulated.seed(runs=RUNS, audit_events=AUDIT_EVENTS)
    proxy = SparseProxy(mode)
    emulated.rewrites.append(proxy)
    if where == "memory":
        yield Sparse(emulated, proxy, MEMORY_URL, memory=True)
    else:
        with serve(emulated) as running:
            yield Sparse(emulated, proxy, running.url, memory=False)


def test_the_proxy_thins_what_the_spec_requires() -> None:
    assert {"created_at", "spec_id", "total", "count", "principal"} <= DROPPABLE
    assert "environment" in DROPPABLE_FROM_RUNS
    assert not {"run_id", "status", "event_id", "event_type", "runs", "events"} & DROPPABLE


@pytest.mark.anyio
async def test_async_workflow_on_a_sparse_platform(sparse: Sparse) -> None:
    absent = UNSET if sparse.proxy.mode == "omit" else None
    async with sparse.async_client() as client:
        created = await client.platform.runs.create.raw({"spec_id": "my-spec"})
        run = await client.platform.runs.get(created.parsed.run_id)
        runs = [r.run_id async for r in client.platform.runs.iter_all(limit=3)]
        events = [e async for e in client.platform.audit.iter_all(limit=5)]
        with anyio.fail_after(WAIT_LIMIT):
            done = await client.platform.runs.wait_for_completion(
                run.run_id, poll_interval=POLL_INTERVAL
            )
    assert created.attempts == 1
    assert created.parsed.created_at is absent
    assert (run.status, run.created_at, run.environment, run.spec_id) == (
        "running",
        absent,
        absent,
        absent,
    )
    assert len(runs) == len(set(runs)) == RUNS + 1  # three pages, none of them with a total
    assert len(events) == AUDIT_EVENTS + 1
    assert done.status == "completed"


def test_blocking_workflow_on_a_sparse_platform(sparse: Sparse) -> None:
    with sparse.sync_client() as client:
        created = client.platform.runs.create({"spec_id": "my-spec"})
        page = client.platform.runs.list(limit=2)
        runs = list(client.platform.runs.iter_all(limit=4))
        done = client.platform.runs.wait_for_completion(created.run_id, poll_interval=POLL_INTERVAL)
    assert page.total in (UNSET, None)
    assert len(page.runs) == 2
    assert len(runs) == RUNS + 1
    assert done.status == "completed"


@pytest.mark.anyio
async def test_a_strict_client_refuses_a_sparse_platform_and_the_replay_recovers(
    sparse: Sparse,
) -> None:
    async with sparse.async_client(strict_responses=True) as client:
        with pytest.raises(KneoDecodeError) as caught:
            await client.platform.runs.create({"spec_id": "my-spec"}, idempotency_key="sparse-1")
    error = caught.value
    assert (error.status, error.idempotency_key, error.attempts) == (201, "sparse-1", 1)
    assert error.raw_body is not None
    assert b"run_id" in error.raw_body
    assert "strict_responses is on" in str(error)
    assert "repeat it with idempotency_key='sparse-1'" in str(error)
    # The advice works: the same key replays the run the platform created, and only that one.
    async with sparse.async_client() as client:
        replayed = await client.platform.runs.create.raw(
            {"spec_id": "my-spec"}, idempotency_key="sparse-1"
        )
    assert replayed.replayed
    assert sparse.emulated.executions["sparse-1"] == 1

"""Behind a gateway that sets its own ``X-Request-ID`` (plan T12, revised; issue: request IDs
behind gateways).

API gateways, ingress controllers and load balancers replace or set ``X-Request-ID``. Every
call behind one must work as it does without it: ``request_id`` on results and errors is the
ID the platform returned, ``sent_request_id`` the one kneo-client sent, and a differing
echo is never an error. Each scenario runs on every driver: the async client on asyncio and
trio and the blocking client, over a loopback socket and in memory, and through
``Transport.request``/``SyncTransport.request``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient, SyncTransport, Transport
from kneo_drivers.memory import AsyncMemoryDriver, MemoryDriver
from kneo_proto import KneoNotFoundError, Request, Response, RetryPolicy
from tests.fake_platform import API_KEY, FakePlatform, status
from tests.loopback import Handler, serve

pytestmark = pytest.mark.timeout(20)

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)
MEMORY_URL = "http://127.0.0.1:9"


class Gateway:
    """Answers for ``platform`` with the platform's ``X-Request-ID`` replaced by its own."""

    def __init__(self, platform: FakePlatform) -> None:
        self.platform = platform
        self._numbers = itertools.count(1)
        self.assigned: list[str] = []

    def __call__(self, request: Request) -> Response:
        answer = self.platform(request)
        assigned = f"gw-{next(self._numbers)}"
        self.assigned.append(assigned)
        headers = [(k, v) for k, v in answer.headers if k.lower() != "x-request-id"]
        return Response(answer.status, (*headers, ("X-Request-ID", assigned)), answer.body)


def not_found_with_gateway_id(request: Request) -> Response:
    """The issue's reproduction: a 404 carrying ``X-Request-ID: gw-123``."""
    body = b'{"error": {"code": "not_found", "message": "no such run"}}'
    headers = (("Content-Type", "application/json"), ("X-Request-ID", "gw-123"))
    return Response(404, headers, body)


@dataclass
class Route:
    """One handler reached over loopback or through a memory driver."""

    url: str
    memory: bool
    handler: Handler

    @property
    def profile(self) -> Profile:
        return Profile(name="gateway", url=self.url, api_key=API_KEY)

    def async_client(self) -> KneoClient:
        driver = AsyncMemoryDriver(self.handler) if self.memory else None
        return KneoClient(self.profile, retry_policy=FAST, driver=driver)

    def sync_client(self) -> SyncKneoClient:
        driver = MemoryDriver(self.handler) if self.memory else None
        return SyncKneoClient(self.profile, retry_policy=FAST, driver=driver)

    def transport(self) -> Transport:
        driver = AsyncMemoryDriver(self.handler) if self.memory else None
        return Transport(self.profile, retry_policy=FAST, driver=driver)

    def sync_transport(self) -> SyncTransport:
        driver = MemoryDriver(self.handler) if self.memory else None
        return SyncTransport(self.profile, retry_policy=FAST, driver=driver)


def _route(kind: str, handler: Handler) -> Iterator[Route]:
    if kind == "memory":
        yield Route(MEMORY_URL, True, handler)
        return
    with serve(handler) as url:
        yield Route(url, False, handler)


@pytest.fixture(params=["loopback", "memory"])
def gateway(request: pytest.FixtureRequest) -> Iterator[Route]:
    platform = FakePlatform(runs=3, audit_events=5)
    try:
        yield from _route(request.param, Gateway(platform))
    finally:
        platform.stop()


@pytest.fixture(params=["loopback", "memory"])
def gw_404(request: pytest.FixtureRequest) -> Iterator[Route]:
    yield from _route(request.param, not_found_with_gateway_id)


def check_gw_404(error: KneoNotFoundError, sent: str) -> None:
    assert error.status == 404
    assert error.request_id == "gw-123"
    assert error.sent_request_id == sent
    assert error.code == "not_found"
    assert error.attempts == 1
    assert "request_id=gw-123" in str(error)


# -- the reproduction: 404 with X-Request-ID: gw-123 ------------------------------------------


@pytest.mark.anyio
async def test_async_404_behind_a_gateway_is_not_found_with_its_request_id(
    gw_404: Route,
) -> None:
    async with gw_404.async_client() as client:
        with pytest.raises(KneoNotFoundError) as caught:
            await client.with_options(request_id="mine-1").platform.runs.get("run-1")
    check_gw_404(caught.value, "mine-1")


def test_blocking_404_behind_a_gateway_is_not_found_with_its_request_id(gw_404: Route) -> None:
    with gw_404.sync_client() as client, pytest.raises(KneoNotFoundError) as caught:
        client.with_options(request_id="mine-2").platform.runs.get("run-1")
    check_gw_404(caught.value, "mine-2")


@pytest.mark.anyio
async def test_transport_request_404_behind_a_gateway(gw_404: Route) -> None:
    async with gw_404.transport() as transport:
        with pytest.raises(KneoNotFoundError) as caught:
            await transport.request("GET", "/v1/runs/run-1", request_id="mine-3")
    check_gw_404(caught.value, "mine-3")


def test_sync_transport_request_404_behind_a_gateway(gw_404: Route) -> None:
    with gw_404.sync_transport() as transport, pytest.raises(KneoNotFoundError) as caught:
        transport.request("GET", "/v1/runs/run-1", request_id="mine-4")
    check_gw_404(caught.value, "mine-4")


# -- a whole workflow behind a rewriting gateway ----------------------------------------------


@pytest.mark.anyio
async def test_async_calls_behind_a_rewriting_gateway_succeed_first_time(gateway: Route) -> None:
    async with gateway.async_client() as client:
        created = await client.platform.runs.create.raw({"spec_id": "s"})
        got = await client.platform.runs.get.raw(created.parsed.run_id)
        events = [e async for e in client.platform.audit.iter_all(limit=2)]
    assert isinstance(gateway.handler, Gateway)
    for raw, assigned in ((created, gateway.handler.assigned[0]), (got, "gw-2")):
        assert raw.attempts == 1
        assert raw.request_id == assigned
        assert raw.sent_request_id != assigned
    assert len(events) == 5 + 1  # seeded, and the run.created of the run above


def test_blocking_calls_behind_a_rewriting_gateway_succeed_first_time(gateway: Route) -> None:
    with gateway.sync_client() as client:
        for number in range(1, 6):
            got = client.platform.runs.get.raw("run-0001")
            assert (got.attempts, got.request_id) == (1, f"gw-{number}")
            assert got.sent_request_id != got.request_id


@pytest.mark.anyio
async def test_async_retry_behind_a_gateway_reports_the_last_returned_id(gateway: Route) -> None:
    assert isinstance(gateway.handler, Gateway)
    gateway.handler.platform.script("/v1/runs/run-0001", status(503))
    async with gateway.async_client() as client:
        got = await client.platform.runs.get.raw("run-0001")
    seen = gateway.handler.platform.requests_to("/v1/runs/run-0001")
    assert got.attempts == 2
    assert got.request_id == "gw-2"
    assert [r.header("x-request-id") for r in seen] == [got.sent_request_id] * 2


def test_sync_transport_behind_a_rewriting_gateway(gateway: Route) -> None:
    with gateway.sync_transport() as transport:
        response = transport.request("GET", "/v1/healthz", request_id="mine-5")
    assert response.status_code == 200
    assert (response.request_id, response.sent_request_id) == ("gw-1", "mine-5")

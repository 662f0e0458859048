"""Behind a gateway that sets its own ``X-Request-ID`` (plan T12, revised; issue: request IDs
behind gateways).

API gateways, ingress controllers and load balancers replace or set ``X-Request-ID``. Every
call behind one must work as it does without it: ``request_id`` on results and errors is the
ID the platform returned, ``sent_request_id`` the one kneo-client sent, and a differing
echo is never an error. Each scenario runs on every driver: the async client on asyncio and
trio and the blocking client, over a loopback socket and in memory, and through
``Transport.request``/``SyncTransport.request``. The platform is the emulator; the gateway is
a rewrite of its replies (``Emulator.rewrite``).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from kneo_client import KneoClient, Profile, SyncKneoClient, SyncTransport, Transport
from kneo_client.testing import Fault, Reply, async_memory_driver, memory_driver
from kneo_proto import KneoNotFoundError, Request, Response, RetryPolicy
from tests.support.emulated import API_KEY, MEMORY_URL, Emulated, replace_response, run_id, serve

pytestmark = pytest.mark.timeout(20)

FAST = RetryPolicy(base_delay=0.01, max_delay=0.05)


class Gateway:
    """A rewrite of the platform's replies: its ``X-Request-ID`` replaced by the gateway's.

    Args:
        assign: Returns the ID the gateway stamps on the next answer.
    """

    def __init__(self, assign: Callable[[], str]) -> None:
        self._assign = assign
        self.assigned: list[str] = []

    def __call__(self, request: Request, reply: Reply) -> Reply:
        answer = reply.response
        assigned = self._assign()
        self.assigned.append(assigned)
        headers = [(k, v) for k, v in answer.headers if k.lower() != "x-request-id"]
        stamped = (*headers, ("X-Request-ID", assigned))
        return replace_response(reply, Response(answer.status, stamped, answer.body))


def numbered() -> Callable[[], str]:
    """``gw-1``, ``gw-2``, ...: a gateway that assigns an ID to every answer."""
    numbers = itertools.count(1)
    return lambda: f"gw-{next(numbers)}"


@dataclass
class Route:
    """The emulator behind a gateway, reached over loopback or through a memory driver."""

    emulated: Emulated
    gateway: Gateway
    url: str
    memory: bool

    @property
    def profile(self) -> Profile:
        return Profile(name="gateway", url=self.url, api_key=API_KEY)

    def async_client(self) -> KneoClient:
        driver = async_memory_driver(self.emulated.emulator) if self.memory else None
        return KneoClient(self.profile, retry_policy=FAST, driver=driver)

    def sync_client(self) -> SyncKneoClient:
        driver = memory_driver(self.emulated.emulator) if self.memory else None
        return SyncKneoClient(self.profile, retry_policy=FAST, driver=driver)

    def transport(self) -> Transport:
        driver = async_memory_driver(self.emulated.emulator) if self.memory else None
        return Transport(self.profile, retry_policy=FAST, driver=driver)

    def sync_transport(self) -> SyncTransport:
        driver = memory_driver(self.emulated.emulator) if self.memory else None
        return SyncTransport(self.profile, retry_policy=FAST, driver=driver)


def _route(kind: str, emulated: Emulated, gateway: Gateway) -> Iterator[Route]:
    emulated.rewrites.append(gateway)
    if kind == "memory":
        yield Route(emulated, gateway, MEMORY_URL, True)
        return
    with serve(emulated) as running:
        yield Route(emulated, gateway, running.url, False)


@pytest.fixture(params=["loopback", "memory"])
def gateway(request: pytest.FixtureRequest) -> Iterator[Route]:
    emulated = Emulated()
    emulated.seed(runs=3, audit_events=5)
    yield from _route(request.param, emulated, Gateway(numbered()))


@pytest.fixture(params=["loopback", "memory"])
def gw_404(request: pytest.FixtureRequest) -> Iterator[Route]:
    """The issue's reproduction: a 404 carrying ``X-Request-ID: gw-123``."""
    yield from _route(request.param, Emulated(), Gateway(lambda: "gw-123"))


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
        created = await client.platform.runs.create.raw({"spec_id": "my-spec"})
        got = await client.platform.runs.get.raw(created.parsed.run_id)
        events = [e async for e in client.platform.audit.iter_all(limit=2)]
    for raw, assigned in ((created, gateway.gateway.assigned[0]), (got, "gw-2")):
        assert raw.attempts == 1
        assert raw.request_id == assigned
        assert raw.sent_request_id != assigned
    assert len(events) == 5 + 1  # seeded, and the run.created of the run above


def test_blocking_calls_behind_a_rewriting_gateway_succeed_first_time(gateway: Route) -> None:
    with gateway.sync_client() as client:
        for number in range(1, 6):
            got = client.platform.runs.get.raw(run_id(1))
            assert (got.attempts, got.request_id) == (1, f"gw-{number}")
            assert got.sent_request_id != got.request_id


@pytest.mark.anyio
async def test_async_retry_behind_a_gateway_reports_the_last_returned_id(gateway: Route) -> None:
    path = f"/v1/runs/{run_id(1)}"
    gateway.emulated.emulator.faults.script("GET", path, Fault.error(503))
    async with gateway.async_client() as client:
        got = await client.platform.runs.get.raw(run_id(1))
    seen = gateway.emulated.requests_to(path)
    assert got.attempts == 2
    assert got.request_id == "gw-2"
    assert [r.header("x-request-id") for r in seen] == [got.sent_request_id] * 2


def test_sync_transport_behind_a_rewriting_gateway(gateway: Route) -> None:
    with gateway.sync_transport() as transport:
        response = transport.request("GET", "/v1/healthz", request_id="mine-5")
    assert response.status_code == 200
    assert (response.request_id, response.sent_request_id) == ("gw-1", "mine-5")

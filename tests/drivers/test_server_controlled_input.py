"""T39: nothing the server sends can steer the client, and its headers cannot break it.

- Cookies: every answer carries ``Set-Cookie`` headers (plain, ``Domain``, ``__Host-``);
  no later request carries a ``Cookie``.
- Server-supplied URLs: list pages carry ``next``/``next_url``/``links`` fields and a
  ``Link: rel="next"`` header pointing at another loopback origin (B, ``localhost``), a
  run's status carries a ``status_url`` to B, and a 201 a ``Location`` to B. The pager
  walks by offsets it computes, the waiter polls ``GET /v1/runs/{id}`` on the base URL, so
  origin B never receives a connection, let alone the key.
- 1,000 response headers: small ones (about 20 KiB in all), 100-byte and 200-byte ones
  (about 115 and 215 KiB, around and over the transport's 100 KiB limit for a response
  head), 1,000 ``Set-Cookie``, 1,000 ``X-Request-ID`` (not the one sent: a response for
  another request) and a 503 with 1,000 ``Retry-After`` values. Each ends in a result or a
  ``KneoError``, never anything else.

Run on asyncio, trio and the blocking client.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import msgspec
import pytest

from kneo_client import KneoClient, SyncKneoClient
from kneo_client.testing import Reply, memory_handler
from kneo_proto import KneoError, Profile, Request, Response, RetryPolicy
from tests.support.emulated import POLL_INTERVAL, Emulated, replace_response
from tests.support.tls import RecordingServer, serving

pytestmark = [pytest.mark.plan("T39"), pytest.mark.timeout(120)]

KEY = "kneo-server-urls-key-0123"
DRIVERS = ["asyncio", "trio", "blocking"]
FAST = RetryPolicy(base_delay=0.01, max_delay=0.02)
LIMIT = 30.0
COOKIES = (
    "session=abc123; Path=/",
    "kneo=1; Domain=127.0.0.1; HttpOnly; SameSite=Lax",
    "__Host-id=xyz; Secure; Path=/",
)


class Steering:
    """A rewrite of the emulator's replies: cookies, foreign URLs and header floods added.

    Attributes:
        foreign: Origin B's URL, which every added link points at.
        flood: Extra header pairs for every answer (the 1,000-header cases).
        flood_status: When set, answer health probes with this status (and the flood).
    """

    def __init__(self) -> None:
        self.foreign = "http://localhost:9"
        self.flood: tuple[tuple[str, str], ...] = ()
        self.flood_status: int | None = None

    def __call__(self, request: Request, reply: Reply) -> Reply:
        if self.flood_status is not None and request.target.startswith("/v1/healthz"):
            return Reply(Response(self.flood_status, self.flood, b'{"ok": true, "service": "s"}'))
        response = reply.response
        link = f"{self.foreign}/v1/runs?limit=10&offset=0"
        headers = [*response.headers, *(("Set-Cookie", c) for c in COOKIES), *self.flood]
        headers += [("Link", f'<{link}>; rel="next"'), ("Location", f"{self.foreign}/v1/x")]
        body = response.body
        payload = msgspec.json.decode(body) if body else None
        if isinstance(payload, dict) and response.status < 300:
            payload.update(
                next=link,
                next_url=link,
                links={"next": link, "self": link},
                status_url=f"{self.foreign}/v1/runs/elsewhere",
            )
            body = msgspec.json.encode(payload)
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        return replace_response(reply, Response(response.status, tuple(headers), body))


@dataclass
class Tally:
    requests: int = 0
    with_cookie: int = 0
    foreign_connections: int = 0
    flood_cases: int = 0
    flood_outcomes: dict[str, int] | None = None

    def outcome(self, name: str) -> None:
        if self.flood_outcomes is None:
            self.flood_outcomes = {}
        self.flood_outcomes[name] = self.flood_outcomes.get(name, 0) + 1


TALLY = Tally()


@contextlib.contextmanager
def origins() -> Iterator[tuple[Steering, RecordingServer, RecordingServer]]:
    steering = Steering()
    emulated = Emulated(api_key=KEY, poll_tick=POLL_INTERVAL, rewrites=[steering])
    emulated.seed(runs=25)
    with (
        serving(RecordingServer(url_host="localhost")) as b,
        serving(RecordingServer(memory_handler(emulated.emulator))) as a,
    ):
        steering.foreign = b.url
        yield steering, a, b
    TALLY.requests += len(a.requests)
    TALLY.with_cookie += sum(1 for seen in a.requests if seen.headers_named("Cookie"))
    TALLY.foreign_connections += b.accepted
    assert [seen.headers_named("Cookie") for seen in a.requests] == [[]] * len(a.requests)
    assert b.accepted == 0


def profile(url: str) -> Profile:
    return Profile(name="steer", url=url, api_key=KEY)


def check_walk(a: RecordingServer, items: list[Any], run_id: str) -> None:
    assert len(items) == 25
    offsets = [seen.target for seen in a.requests if seen.target.startswith("/v1/runs?")]
    assert [t.split("offset=")[1].split("&")[0] for t in offsets] == ["0", "10", "20"]
    gets = [seen for seen in a.requests if seen.target == f"/v1/runs/{run_id}"]
    assert len(gets) == 2 + 3  # the emulator completes a run at its second poll; then 3 gets


async def steer_async(url: str, a: RecordingServer) -> None:
    with anyio.fail_after(LIMIT):
        async with KneoClient(profile(url), retry_policy=FAST) as client:
            runs = client.platform.runs
            items = [run async for run in runs.iter_all(limit=10)]
            created = await runs.create({"spec_id": "my-spec"})
            await runs.wait_for_completion(created.run_id, timeout=10, poll_interval=0.01)
            for _ in range(3):
                await runs.get(created.run_id)
    check_walk(a, items, created.run_id)


def steer_blocking(url: str, a: RecordingServer) -> None:
    with SyncKneoClient(profile(url), retry_policy=FAST) as client:
        runs = client.platform.runs
        items = list(runs.iter_all(limit=10))
        created = runs.create({"spec_id": "my-spec"})
        runs.wait_for_completion(created.run_id, timeout=10, poll_interval=0.01)
        for _ in range(3):
            runs.get(created.run_id)
    check_walk(a, items, created.run_id)


@pytest.mark.parametrize("driver", DRIVERS)
def test_server_urls_and_cookies_never_steer_the_client(driver: str) -> None:
    with origins() as (_, a, _b):
        if driver == "blocking":
            steer_blocking(a.url, a)
        else:
            anyio.run(steer_async, a.url, a, backend=driver)


FLOODS: dict[str, tuple[int | None, tuple[tuple[str, str], ...]]] = {
    "1,000 small headers": (None, tuple((f"X-Filler-{n}", "v" * 8) for n in range(1000))),
    "1,000 headers of 100 bytes": (None, tuple((f"X-Big-{n}", "v" * 100) for n in range(1000))),
    "1,000 headers of 200 bytes": (None, tuple((f"X-Big-{n}", "v" * 200) for n in range(1000))),
    "1,000 Set-Cookie": (None, tuple(("Set-Cookie", f"c{n}=v; Path=/") for n in range(1000))),
    "503 with 1,000 Retry-After": (503, tuple(("Retry-After", str(n % 3)) for n in range(1000))),
    "1,000 X-Request-ID": (200, tuple(("X-Request-ID", f"r{n}") for n in range(1000))),
}


async def flood_async(url: str) -> str:
    with anyio.fail_after(LIMIT):
        async with KneoClient(profile(url), retry_policy=FAST) as client:
            try:
                await client.platform.health.healthz()
            except KneoError as error:
                return type(error).__name__
            return "success"


def flood_blocking(url: str) -> str:
    with SyncKneoClient(profile(url), retry_policy=FAST) as client:
        try:
            client.platform.health.healthz()
        except KneoError as error:
            return type(error).__name__
        return "success"


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("case", list(FLOODS))
def test_a_thousand_response_headers_end_in_a_result_or_a_kneo_error(
    case: str, driver: str
) -> None:
    with origins() as (steering, a, _):
        steering.flood_status, steering.flood = FLOODS[case]
        if driver == "blocking":
            outcome = flood_blocking(a.url)
        else:
            outcome = anyio.run(flood_async, a.url, backend=driver)
    TALLY.flood_cases += 1
    TALLY.outcome(f"{case}: {outcome}")


def test_server_urls_figure(figure: Callable[[str, str], None]) -> None:
    if not TALLY.requests:
        pytest.skip("the T39 tests did not run (deselected)")
    outcomes = "; ".join(f"{k} x{v}" for k, v in sorted((TALLY.flood_outcomes or {}).items()))
    figure(
        "T39",
        f"{TALLY.requests} requests answered with Set-Cookie and links to a foreign origin "
        f"(pages, status_url, Link, Location) over 3 drivers: cookies replayed "
        f"{TALLY.with_cookie}, connections (credentialed or not) to the foreign origin "
        f"{TALLY.foreign_connections}; {TALLY.flood_cases} header-flood calls, foreign "
        f"exceptions 0 ({outcomes})",
    )

"""T35: CRLF and header injection: no caller-supplied value can add a header or split a
request.

Every sink a caller controls is fed 22 payloads (CR, LF, CRLF with a header or a whole
smuggled request behind it, NUL, VT, FF, DEL, ESC, U+2028, U+0085, a zero-width space, a lone
surrogate, non-ASCII, TAB, ``%0d%0a`` and friends, 100 KiB), each embedded in a marker
(``inj<payload>end``) so that a refusal can be checked for echoing the value:

- headers: the idempotency key, the request-ID override, extra headers via
  ``with_options(headers=...)`` (value and name), and ``Transport.request``'s ``headers`` and
  ``request_id``;
- the query: a list filter (``runs.list(status=...)``) and ``Transport.request(params=...)``;
- the path of ``Transport.request``; and the ``User-Agent`` of a ``ClientConfig`` (pure).

The oracle is independent of kneo-client's own checks: a header value is sendable iff it is
visible ASCII, space or TAB (RFC 9110 5.5); a header name iff it is an RFC 9110 token; a
query value always (percent-encoded; a lone surrogate cannot be encoded and is refused);
a raw path iff it is plain RFC 3986 path characters. A refused value raises
``KneoUsageError`` before anything is sent and the error does not echo it; an accepted one
arrives byte for byte. The recording server parses with h11, so an injected header or a
split request would show as an extra header, an extra request or a protocol error.
Run on asyncio, trio and the blocking client.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from secrets import token_hex
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import anyio
import pytest

from kneo_client import KneoClient, SyncKneoClient, SyncTransport, Transport
from kneo_client.testing import memory_handler
from kneo_proto import (
    ClientConfig,
    KneoError,
    KneoUsageError,
    Profile,
    RetryPolicy,
)
from kneo_proto.models import RunStatus
from tests.support.emulated import Emulated, run_id
from tests.support.tls import RecordingServer, Seen, serving

pytestmark = [pytest.mark.plan("T35"), pytest.mark.timeout(120)]

KEY = "kneo_canary_" + token_hex(18)
ONE_TRY = RetryPolicy(max_attempts=1)
LIMIT = 60.0
DRIVERS = ["asyncio", "trio", "blocking"]
RUN = run_id(1)

PAYLOADS: dict[str, str] = {
    "CRLF": "\r\n",
    "LF": "\n",
    "CR": "\r",
    "CRLF + header": "\r\nX-Injected: 1",
    "LF + header": "\nX-Injected: 1",
    "CR + header": "\rX-Injected: 1",
    "smuggled request": "\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nX-Injected: 1\r\n\r\n",
    "NUL": "\x00",
    "VT": "\x0b",
    "FF": "\x0c",
    "DEL": "\x7f",
    "ESC": "\x1b[31m",
    "U+2028": "\u2028",
    "U+0085": "\u0085",
    "zero-width space": "\u200b",
    "lone surrogate": "\ud800",
    "non-ASCII": "é",
    "TAB": "\t",
    "%0d%0a + header": "%0d%0aX-Injected:%201",
    "%0D%0A": "%0D%0A",
    "reserved characters": ": ;,=&?#/+",
    "100 KiB": "a" * 100 * 1024,
}
MARK, END = "inj", "end"
_VISIBLE = re.compile(r"[\t\x20-\x7e]*")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PATH = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@%/]*")


def embedded(payload: str) -> str:
    return f"{MARK}{payload}{END}"


def header_ok(value: str) -> bool:
    return _VISIBLE.fullmatch(value) is not None


def query_ok(value: str) -> bool:
    return not any(0xD800 <= ord(ch) <= 0xDFFF for ch in value)


class Api:
    """One client's three doors (facade, ``with_options``, ``Transport``), async or blocking."""

    def __init__(self, client: KneoClient | SyncKneoClient, transport: Transport | SyncTransport):
        self.client = client
        self.transport = transport


@dataclass(frozen=True)
class Sink:
    """Where a value goes, whether the oracle lets it through, and where it must arrive."""

    name: str
    call: Callable[[Api, str], Any]
    accepts: Callable[[str], bool]
    arrived: Callable[[Seen, str], bool]
    echoes_escaped: bool = False  # a header *name* is shown, as repr (never a secret)


def _header(name: str) -> Callable[[Seen, str], bool]:
    return lambda seen, value: seen.headers_named(name) == [value]


def _query(name: str) -> Callable[[Seen, str], bool]:
    def arrived(seen: Seen, value: str) -> bool:
        query = urlsplit(seen.target).query
        plain = re.fullmatch(r"[A-Za-z0-9%._~\-=&]*", query) is not None
        return plain and parse_qsl(query, keep_blank_values=True, errors="strict") == [
            (name, value)
        ]

    return arrived


def _list_filter(seen: Seen, value: str) -> bool:
    """The filter arrives as sent; the pager's own parameters sit beside it."""
    if re.fullmatch(r"[A-Za-z0-9%._~\-=&]*", urlsplit(seen.target).query) is None:
        return False
    pairs = parse_qsl(urlsplit(seen.target).query, keep_blank_values=True, errors="strict")
    return [(k, v) for k, v in pairs if k == "status"] == [("status", value)]


SINKS = [
    Sink(
        "idempotency key",
        lambda api, v: api.client.platform.runs.create({"spec_id": "my-spec"}, idempotency_key=v),
        lambda v: header_ok(v) and len(v) <= 256,
        _header("Idempotency-Key"),
    ),
    Sink(
        "request-ID override",
        lambda api, v: api.client.with_options(request_id=v).platform.runs.get(RUN),
        header_ok,
        _header("X-Request-ID"),
    ),
    Sink(
        "extra header value",
        lambda api, v: api.client.with_options(headers={"X-Extra": v}).platform.runs.get(RUN),
        header_ok,
        _header("X-Extra"),
    ),
    Sink(
        "extra header name",
        lambda api, v: api.client.with_options(headers={v: "1"}).platform.runs.get(RUN),
        lambda v: _TOKEN.fullmatch(v) is not None,
        lambda seen, v: seen.headers_named(v) == ["1"],
        echoes_escaped=True,
    ),
    Sink(
        "Transport.request headers",
        lambda api, v: api.transport.request("GET", "/v1/healthz", headers={"X-Extra": v}),
        header_ok,
        _header("X-Extra"),
    ),
    Sink(
        "Transport.request request_id",
        lambda api, v: api.transport.request("GET", "/v1/healthz", request_id=v),
        header_ok,
        _header("X-Request-ID"),
    ),
    Sink(
        "list filter (query)",
        # status is open: any string is sent as given (a cast, as docs/usage.md says).
        lambda api, v: api.client.platform.runs.list(status=cast(RunStatus, v)),
        query_ok,
        _list_filter,
    ),
    Sink(
        "Transport.request params",
        lambda api, v: api.transport.request("GET", "/v1/healthz", params={"q": v}),
        query_ok,
        _query("q"),
    ),
    Sink(
        "Transport.request path",
        lambda api, v: api.transport.request("GET", "/v1/" + v),
        lambda v: _PATH.fullmatch(v) is not None,
        lambda seen, v: seen.target == "/v1/" + v,
    ),
]


@dataclass
class Tally:
    calls: int = 0
    refused: int = 0
    sent: int = 0
    echoed: int = 0
    injected_headers: int = 0
    extra_requests: int = 0
    protocol_errors: int = 0
    drivers: set[str] = field(default_factory=set)


TALLY = Tally()


async def settle(outcome: Any) -> None:
    if inspect.isawaitable(outcome):
        await outcome


async def exercise(api: Api, server: RecordingServer) -> list[str]:
    """Every payload into every sink; returns the mismatches with the oracle."""
    problems: list[str] = []
    for sink in SINKS:
        for label, payload in PAYLOADS.items():
            value = embedded(payload)
            before = len(server.requests)
            refused: KneoUsageError | None = None
            try:
                await settle(sink.call(api, value))
            except KneoUsageError as exc:
                refused = exc
            except KneoError:
                pass  # an answer (a 404 for an odd path): it was sent
            TALLY.calls += 1
            new = server.requests[before:]
            where = f"{sink.name} <- {label}"
            if refused is not None:
                TALLY.refused += 1
                shown = f"{refused} {refused!r}"
                if sink.echoes_escaped:
                    shown = "" if str(refused).isprintable() else value  # no raw control char
                if value in shown or (len(payload) > 1 and payload in shown):
                    TALLY.echoed += 1
                    problems.append(f"{where}: the refusal echoes the value")
                if sink.accepts(value) or new:
                    problems.append(f"{where}: refused, but the oracle accepts it")
                continue
            TALLY.sent += 1
            if not sink.accepts(value):
                problems.append(f"{where}: sent, but the oracle refuses it")
            if len(new) != 1 or not sink.arrived(new[0], value):
                problems.append(f"{where}: did not arrive intact: {[s.target for s in new]}")
    return problems


def check_server(server: RecordingServer) -> None:
    TALLY.injected_headers += sum(len(s.headers_named("X-Injected")) for s in server.requests)
    TALLY.extra_requests += sum(s.target.startswith("/smuggled") for s in server.requests)
    TALLY.protocol_errors += len(server.protocol_errors)
    assert TALLY.injected_headers == TALLY.extra_requests == TALLY.protocol_errors == 0


def profile(url: str) -> Profile:
    return Profile(name="inject", url=url, api_key=KEY)


async def exercise_async(server: RecordingServer) -> list[str]:
    with anyio.fail_after(LIMIT):
        async with (
            KneoClient(profile(server.url), retry_policy=ONE_TRY) as client,
            Transport(profile(server.url), retry_policy=ONE_TRY) as transport,
        ):
            return await exercise(Api(client, transport), server)


@pytest.mark.parametrize("driver", DRIVERS)
def test_no_caller_value_can_inject_a_header_or_split_a_request(driver: str) -> None:
    emulated = Emulated(api_key=KEY)
    emulated.seed(runs=1)
    with serving(RecordingServer(memory_handler(emulated.emulator))) as server:
        if driver == "blocking":
            with (
                SyncKneoClient(profile(server.url), retry_policy=ONE_TRY) as client,
                SyncTransport(profile(server.url), retry_policy=ONE_TRY) as transport,
            ):
                problems = anyio.run(exercise, Api(client, transport), server)
        else:
            problems = anyio.run(exercise_async, server, backend=driver)
        check_server(server)
    TALLY.drivers.add(driver)
    assert problems == []


@pytest.mark.parametrize("label", list(PAYLOADS))
def test_a_user_agent_with_a_control_character_is_refused_without_echo(label: str) -> None:
    value = "kneo-client/1 " + embedded(PAYLOADS[label])
    if header_ok(value):
        assert ClientConfig(base_url="https://kneo.test", user_agent=value).user_agent == value
        return
    with pytest.raises(KneoUsageError, match="User-Agent") as caught:
        ClientConfig(base_url="https://kneo.test", user_agent=value)
    assert value not in f"{caught.value} {caught.value!r}"


def test_injection_figure(figure: Callable[[str, str], None]) -> None:
    if not TALLY.calls:
        pytest.skip("the injection tests did not run (deselected)")
    figure(
        "T35",
        f"{len(PAYLOADS)} payloads x {len(SINKS)} sinks x {len(TALLY.drivers)} drivers = "
        f"{TALLY.calls} calls ({TALLY.refused} refused before sending, {TALLY.sent} sent "
        f"intact), plus the User-Agent sink (pure): injected headers observed "
        f"{TALLY.injected_headers}, extra requests observed {TALLY.extra_requests}, h11 "
        f"protocol errors {TALLY.protocol_errors}, refusals echoing the value {TALLY.echoed}",
    )
    assert TALLY.echoed == 0

"""T36: a path parameter is always exactly one path segment; dot segments never leave.

The bulk is pure: hypothesis ids (about 2,000 in CI, any Unicode text, text rich in ``.``,
``/``, ``%``, ``?`` and ``#``, lone surrogates) plus a corpus (``..``, ``.``, ``../admin``,
``a/b``, ``a?b``, ``a#b``, ``%2e%2e``, ``%2F``, ``a%00``, empty, space, RTL, emoji, 8 KiB, ...)
go into every one of the 13 endpoints that take a path parameter, and the ``Request`` the
core builds is checked against an oracle that does not use kneo-client's quoting: the
path has the template's segments, the parameter's segment holds only unreserved characters
and percent escapes, decodes back to the id exactly, and is not a dot segment; no query or
fragment appears. The empty string, ``.``, ``..`` and anything decoding to them, and text
that cannot be UTF-8 encoded, are refused with ``KneoUsageError``. A loopback sample (the
corpus and 40 random ids, on asyncio, trio and the blocking client) checks the raw request
target the server received.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import anyio
import pytest
from hypothesis import event, given, settings, strategies as st

from kneo_client import KneoClient, SyncKneoClient
from kneo_client.testing import Emulator, memory_handler
from kneo_proto import (
    Call,
    ClientConfig,
    Clock,
    Endpoint,
    KneoError,
    KneoUsageError,
    Operation,
    Profile,
    RetryPolicy,
    Send,
    endpoints,
)
from tests.support.scale import scaled
from tests.support.tls import RecordingServer, serving

pytestmark = [pytest.mark.plan("T36"), pytest.mark.timeout(120)]

KEY = "kneo-path-test-key"
CONFIG = ClientConfig(base_url="https://kneo.test/base", api_key=KEY)
CLOCK = Clock(monotonic=lambda: 0.0, wall=lambda: 0.0)
DOTS = frozenset({"", ".", ".."})
_SEGMENT = re.compile(r"(?:[A-Za-z0-9\-._~]|%[0-9A-F]{2})+")

CORPUS = [
    "..",
    ".",
    "../admin",
    "a/b",
    "a?b",
    "a#b",
    "%2e%2e",
    "%2E%2E",
    ".%2e",
    "%2e",
    "%2F",
    "..%2F",
    "a%00",
    "%252e%252e",
    "",
    " ",
    "a b",
    "..;",
    "~",
    "\x00",
    "a\r\nb",
    "\u05e9\u05dc\u05d5\u05dd\u202e",  # Hebrew, then RIGHT-TO-LEFT OVERRIDE
    "\U0001f680",
    "run-\U0001f680-\u0645\u0631\u062d\u0628\u0627",
    "\ud800",
    "x" * 8192,
    "\U0001f680" * 2048,  # 8 KiB of UTF-8
]

# Extra arguments each endpoint needs besides its path parameter.
EXTRA: dict[str, dict[str, Any]] = {
    "resume_human_task": {"body": {"decision": "approve"}, "idempotency_key": "k"},
    "put_environment_policy": {"body": {"require_human_review": True}},
    "cancel_run": {"idempotency_key": "k"},
    "continue_run": {"idempotency_key": "k"},
}
WITH_PATH_PARAMS: list[Endpoint[Any, Any]] = [e for e in endpoints.ALL if e.route.placeholders]


def must_refuse(value: str) -> bool:
    """The oracle's refusals: dot segments (also encoded), and text UTF-8 cannot carry."""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return True
    return value in DOTS or unquote(value) in DOTS


@dataclass
class Tally:
    ids: int = 0
    built: int = 0
    refused: int = 0
    mismatches: int = 0
    dots_sent: int = 0
    wire_requests: int = 0
    wire_mismatches: int = 0


TALLY = Tally()


def build(endpoint: Endpoint[Any, Any], value: str) -> Operation[Any]:
    return endpoint(value, **EXTRA.get(endpoint.name, {}))


def check_request(endpoint: Endpoint[Any, Any], value: str) -> None:
    """Build ``endpoint(value)`` and its first request; check them against the oracle."""
    TALLY.built += 1
    try:
        operation = build(endpoint, value)
    except KneoUsageError:
        TALLY.refused += 1
        assert must_refuse(value), f"{endpoint.name}({value[:40]!r}) refused"
        return
    if must_refuse(value):
        TALLY.dots_sent += 1
        pytest.fail(f"{endpoint.name}({value[:40]!r}) was not refused")
    action = Call(operation, CONFIG, clock=CLOCK).next_action()
    assert isinstance(action, Send)
    url = urlsplit(action.request.url)
    assert url.path == "/base" + operation.path
    assert "#" not in action.request.url
    assert url.query == operation.target.partition("?")[2]
    check_path(endpoint.route.template, operation.path, value)


def check_path(template: str, path: str, value: str) -> None:
    wanted = template.split("/")
    got = path.split("/")
    if len(got) != len(wanted):
        TALLY.mismatches += 1
        pytest.fail(f"{path[:80]!r} has {len(got)} segments, {template} has {len(wanted)}")
    for fixed, segment in zip(wanted, got, strict=True):
        if not fixed.startswith("{"):
            assert segment == fixed
            continue
        ok = _SEGMENT.fullmatch(segment) is not None and segment not in DOTS
        ok = ok and unquote(segment, errors="strict") == value
        if not ok:
            TALLY.mismatches += 1
            pytest.fail(f"{value[:40]!r} became the segment {segment[:80]!r}")


def test_the_corpus_is_refused_or_sent_as_one_segment() -> None:
    for value in CORPUS:
        TALLY.ids += 1
        for endpoint in WITH_PATH_PARAMS:
            check_request(endpoint, value)
    assert len(WITH_PATH_PARAMS) == 13


ids = st.one_of(
    st.text(),
    st.text(alphabet="./%2eEfF?#&;=+ \\\x00\r\n", max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0xD7F0, max_codepoint=0xE010), max_size=4),
    st.builds(lambda a, b: a + b, st.sampled_from(CORPUS[:15]), st.text(max_size=4)),
)


@settings(max_examples=scaled(2000), derandomize=True, deadline=None)
@given(value=ids)
def test_generated_ids_are_refused_or_sent_as_one_segment(value: str) -> None:
    TALLY.ids += 1
    event("refused" if must_refuse(value) else "one segment")
    for endpoint in WITH_PATH_PARAMS:
        check_request(endpoint, value)


# -- on the wire ---------------------------------------------------------------------------


def wire_sample() -> list[str]:
    rng = random.Random(36)
    alphabet = "./%2eEfF?#&;=+ \\aZ9~-_\u00e9\u202e\U0001f680"
    randoms = [
        "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 12))) for _ in range(40)
    ]
    return CORPUS + randoms


async def send_async(url: str, values: list[str]) -> None:
    with anyio.fail_after(60):
        async with KneoClient(profile(url), retry_policy=RetryPolicy(max_attempts=1)) as client:
            for value in values:
                with contextlib.suppress(KneoError):
                    await client.platform.runs.get(value)


def send_blocking(url: str, values: list[str]) -> None:
    with SyncKneoClient(profile(url), retry_policy=RetryPolicy(max_attempts=1)) as client:
        for value in values:
            with contextlib.suppress(KneoError):
                client.platform.runs.get(value)


def profile(url: str) -> Profile:
    return Profile(name="paths", url=url, api_key=KEY)


@pytest.mark.parametrize("driver", ["asyncio", "trio", "blocking"])
def test_the_server_receives_exactly_one_segment(driver: str) -> None:
    values = wire_sample()
    sendable = [v for v in values if not must_refuse(v)]
    with serving(RecordingServer(memory_handler(Emulator(api_key=KEY)))) as server:
        if driver == "blocking":
            send_blocking(server.url, values)
        else:
            anyio.run(send_async, server.url, values, backend=driver)
    targets = [seen.target for seen in server.requests]
    TALLY.wire_requests += len(targets)
    assert len(targets) == len(sendable), "a refused id was sent, or a sendable one was not"
    for value, target in zip(sendable, targets, strict=True):
        try:
            check_path("/v1/runs/{run_id}", target, value)
        except pytest.fail.Exception:
            TALLY.wire_mismatches += 1
            raise


def test_path_parameter_figure(figure: Callable[[str, str], None]) -> None:
    if not TALLY.ids:
        pytest.skip("the path tests did not run (deselected)")
    figure(
        "T36",
        f"{TALLY.ids} ids (hypothesis + {len(CORPUS)}-id corpus) x {len(WITH_PATH_PARAMS)} "
        f"endpoints = {TALLY.built} requests built ({TALLY.refused} refused before sending): "
        f"paths not matching the route template {TALLY.mismatches}, dot-segment ids sent "
        f"{TALLY.dots_sent}; on the wire {TALLY.wire_requests} requests over 3 drivers, raw "
        f"targets not matching {TALLY.wire_mismatches}",
    )

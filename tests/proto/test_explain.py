"""Errors that explain themselves (issue 11, part 5): a transport failure names the host and
port, the phase and the timeout in force (and the deadline when it ended the call); a TLS
failure says what to check; a ``Retry-After`` above the cap says the value, the cap and what
to do; a base URL ending in ``/v1`` is repaired with a note.

The TLS details are OpenSSL's own words, as real loopback handshakes produced them
(``tests/drivers/test_network_error_messages.py`` checks the same hints end to end).
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from kneo_proto import (
    Call,
    CallOptions,
    ClientConfig,
    Failed,
    FailureKind,
    KneoConfigurationError,
    KneoError,
    KneoRateLimited,
    KneoServiceUnavailableError,
    KneoTimeoutError,
    Phase,
    RetryPolicy,
    Send,
)
from kneo_proto._config import normalize_base_url
from kneo_proto._explain import host_port, seconds, tls_hint, with_note
from tests.proto.harness import FakeClock, drive, error_reply, make_config, operation, scripted

ONE_TRY = RetryPolicy(max_attempts=1)
HOST = "kneo.test:443"

REFUSED = (
    "nothing accepted the connection there: check that the platform is running and that "
    "the profile's url has the right host and port"
)
UNREACHABLE = "check the URL's host name and port, and the network or proxy in between"
CONNECT_SLOW = (
    "the host did not accept a connection in time: check the URL's host and port and any "
    "firewall or proxy in between, or raise timeout"
)
POOL_BUSY = (
    "every pooled connection stayed busy: make fewer calls at once, raise "
    "max_connections, or raise timeout"
)
READ_SLOW = (
    "the platform did not answer in time: raise timeout (seconds per phase, e.g. "
    "client.with_options(timeout=60)) if its answers are slow"
)
WRITE_SLOW = "the request could not be sent in time: check the network, or raise timeout"
DEADLINE = (
    "the call's deadline ended it: raise deadline (client.with_options(deadline=...)), or "
    "leave it unset to bound each attempt by timeout alone"
)
TOO_LARGE = "raise max_response_bytes, or ask for less (a smaller limit= per page)"

# Real OpenSSL texts, from loopback handshakes (httpcore2 on asyncio, trio and blocking).
UNTRUSTED = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
    "issuer certificate (_ssl.c:1006)"
)
IP_MISMATCH = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: IP address mismatch, "
    "certificate is not valid for '127.0.0.1'. (_ssl.c:1006)"
)
HOST_MISMATCH = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: Hostname mismatch, "
    "certificate is not valid for 'localhost'. (_ssl.c:1006)"
)
EXPIRED = (
    "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: certificate has expired "
    "(_ssl.c:1006)"
)
WRONG_VERSION = "[SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)"
EARLY_EOF = (
    "[SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of protocol (_ssl.c:1006)"
)
UNTRUSTED_HINT = (
    "the certificate is not signed by a CA this client trusts: by default the system's "
    "trust store (or the file SSL_CERT_FILE names), else only the CA certificates in the "
    "PEM file that ca_bundle (in the profile) or KNEO_CA_BUNDLE names; for a private CA, "
    "set one of them to that CA's PEM file"
)
PLAIN_HTTP_HINT = (
    "the server answered in plain HTTP, not TLS: this port serves http://, so use an "
    "http:// URL (allowed with the key only to a loopback host) or the platform's https "
    "port"
)


def test_explain_tables_are_not_empty() -> None:
    for table in (FAILURE_CASES, TLS_CASES, HOST_PORT_CASES, SECONDS_CASES, BASE_URL_CASES):
        assert table


def failed_call(
    kind: FailureKind,
    detail: str,
    phase: Phase | None,
    *,
    options: CallOptions | None = None,
    takes: float = 0.0,
    config: ClientConfig | None = None,
) -> tuple[Call[Any], KneoError]:
    """One attempt that fails with ``kind`` after ``takes`` seconds; the call and its error."""
    clock = FakeClock()
    options = (options or CallOptions()).merged(CallOptions(retry_policy=ONE_TRY))
    call: Call[Any] = Call(
        operation("GET"),
        config or make_config(),
        clock=clock.clock(),
        options=options,
        rng=random.Random(1),
    )
    assert isinstance(call.next_action(), Send)
    clock.advance(takes)
    call.receive_failure(kind, detail, phase=phase)
    action = call.next_action()
    assert isinstance(action, Failed)
    return call, action.error


# -- item 1: host:port, phase, timeout, deadline -------------------------------------------

C, T = FailureKind.CONNECT, FailureKind.TIMEOUT
CT, N = FailureKind.CONNECT_TIMEOUT, FailureKind.NETWORK
DEADLINE_2 = CallOptions(deadline=2.0)
SLOW_DEADLINE = CallOptions(timeout=5.0, deadline=60.0)
# (kind, phase, detail, options, seconds the attempt took) -> the message between
# "GET /v1/x: " and " (request_id=...)"
FAILURE_CASES: list[tuple[FailureKind, Phase | None, str, CallOptions | None, float, str]] = [
    (
        C,
        Phase.CONNECT,
        "ConnectionRefusedError: [Errno 111] Connection refused",
        None,
        0.0,
        f"could not connect to {HOST} (connect phase, timeout 30 s): ConnectionRefusedError: "
        f"[Errno 111] Connection refused - {REFUSED}",
    ),
    (
        C,
        Phase.CONNECT,
        "[Errno -2] Name or service not known",
        None,
        0.0,
        f"could not connect to {HOST} (connect phase, timeout 30 s): [Errno -2] Name or "
        f"service not known - {UNREACHABLE}",
    ),
    (
        C,
        Phase.CONNECT,
        "Connection refused",
        DEADLINE_2,
        0.0,
        f"could not connect to {HOST} (connect phase, timeout 2 s): Connection refused - {REFUSED}",
    ),
    (
        CT,
        Phase.CONNECT,
        "",
        CallOptions(timeout=5.0),
        5.0,
        f"timed out connecting to {HOST} (connect phase, timeout 5 s) - {CONNECT_SLOW}",
    ),
    (
        CT,
        Phase.POOL,
        "waited too long for a connection",
        None,
        30.0,
        f"timed out waiting for a free connection to {HOST} (pool phase, timeout 30 s): "
        f"waited too long for a connection - {POOL_BUSY}",
    ),
    (CT, None, "", None, 30.0, f"timed out before sending to {HOST} (timeout 30 s)"),
    (
        T,
        Phase.READ,
        "",
        CallOptions(timeout=0.5),
        0.5,
        f"timed out waiting for the response from {HOST} (read phase, timeout 0.5 s) - {READ_SLOW}",
    ),
    (
        T,
        Phase.WRITE,
        "timed out",
        None,
        30.0,
        f"timed out sending the request to {HOST} (write phase, timeout 30 s): timed out - "
        f"{WRITE_SLOW}",
    ),
    (T, None, "", None, 30.0, f"timed out talking to {HOST} (timeout 30 s)"),
    (  # the deadline cut the attempt's timeout down to what was left of it
        T,
        Phase.READ,
        "the call's deadline expired",
        DEADLINE_2,
        2.0,
        f"timed out waiting for the response from {HOST} (read phase, timeout 2 s, the "
        f"call's deadline of 2 s ran out): the call's deadline expired - {DEADLINE}",
    ),
    (  # an async driver cut the attempt at the deadline, with no phase timed out
        T,
        None,
        "the call's deadline expired mid-attempt",
        SLOW_DEADLINE,
        60.0,
        f"timed out talking to {HOST} (timeout 5 s, the call's deadline of 60 s ran out): the "
        f"call's deadline expired mid-attempt - {DEADLINE}",
    ),
    (  # a deadline far away plays no part
        T,
        Phase.READ,
        "",
        SLOW_DEADLINE,
        5.0,
        f"timed out waiting for the response from {HOST} (read phase, timeout 5 s) - {READ_SLOW}",
    ),
    (
        N,
        Phase.READ,
        "Server disconnected without sending a response.",
        None,
        0.0,
        f"connection to {HOST} failed while reading the response (read phase): Server "
        "disconnected without sending a response.",
    ),
    (
        N,
        Phase.WRITE,
        "[Errno 32] Broken pipe",
        None,
        0.0,
        f"connection to {HOST} failed while sending the request (write phase): [Errno 32] "
        "Broken pipe",
    ),
    (N, None, "", None, 0.0, f"connection to {HOST} failed"),
    (
        FailureKind.PROTOCOL,
        Phase.READ,
        "illegal status line",
        None,
        0.0,
        f"invalid HTTP response from {HOST} (read phase): illegal status line",
    ),
    (
        FailureKind.TOO_LARGE,
        None,
        "response body over the cap",
        None,
        0.0,
        f"response body from {HOST} too large: response body over the cap - {TOO_LARGE}",
    ),
    (
        FailureKind.TLS,
        Phase.CONNECT,
        UNTRUSTED,
        None,
        0.0,
        f"TLS handshake with {HOST} failed: {UNTRUSTED} - {UNTRUSTED_HINT}",
    ),
    (
        FailureKind.TLS,
        Phase.CONNECT,
        "handshake failure",
        None,
        0.0,
        f"TLS handshake with {HOST} failed: handshake failure",
    ),
]


@pytest.mark.parametrize(
    ("kind", "phase", "detail", "options", "takes", "message"),
    FAILURE_CASES,
    ids=[f"{k.name}-{p.name if p else '-'}-{i}" for i, (k, p, *_) in enumerate(FAILURE_CASES)],
)
def test_call_transport_failure_says_where_in_which_phase_and_what_to_do(
    kind: FailureKind,
    phase: Phase | None,
    detail: str,
    options: CallOptions | None,
    takes: float,
    message: str,
) -> None:
    call, error = failed_call(kind, detail, phase, options=options, takes=takes)
    assert str(error) == f"GET /v1/x: {message} (request_id={call.request_id})"
    assert error.args == (str(error),)


def test_call_transport_failure_names_the_port_of_the_base_url() -> None:
    config = ClientConfig(base_url="http://[::1]:8080/base", api_key="k")
    _, error = failed_call(FailureKind.CONNECT, "", Phase.CONNECT, config=config)
    assert str(error).startswith("GET /v1/x: could not connect to [::1]:8080 (connect phase")


def test_call_deadline_before_an_attempt_names_the_deadline() -> None:
    clock = FakeClock()
    trace = drive(
        operation("GET"),
        scripted(error_reply(503, "busy")),
        clock=clock,
        options=CallOptions(deadline=0.3),
        policy=RetryPolicy(max_attempts=5, base_delay=0.1, max_delay=0.1, jitter=0.0),
        oversleep=0.2,
    )
    assert isinstance(trace.error, KneoTimeoutError)
    assert str(trace.error) == (
        "GET /v1/x: the call's deadline of 0.3 s expired before attempt 2 - raise deadline "
        "(client.with_options(deadline=...)) if the call needs longer "
        f"(request_id={trace.error.sent_request_id})"
    )


# -- item 2: what to check after a TLS failure ----------------------------------------------

# (OpenSSL's text, the URL's host) -> the hint (None: nothing specific to say)
TLS_CASES: list[tuple[str, str, str | None]] = [
    (UNTRUSTED, "localhost", UNTRUSTED_HINT),
    (
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate "
        "(_ssl.c:1006)",
        "localhost",
        UNTRUSTED_HINT,
    ),
    (
        IP_MISMATCH,
        "127.0.0.1",
        "the server's certificate does not name 127.0.0.1: use the host name the certificate "
        "was issued for in the profile's url, or have the certificate reissued for 127.0.0.1",
    ),
    (
        HOST_MISMATCH,
        "localhost",
        "the server's certificate does not name localhost: use the host name the certificate "
        "was issued for in the profile's url, or have the certificate reissued for localhost",
    ),
    (
        EXPIRED,
        "localhost",
        "the server's certificate has expired (or this machine's clock is wrong): renew the "
        "certificate",
    ),
    (WRONG_VERSION, "127.0.0.1", PLAIN_HTTP_HINT),
    (
        EARLY_EOF,
        "127.0.0.1",
        "the server closed the connection during the handshake: check that this port serves "
        "https (a plain-http port needs an http:// URL)",
    ),
    ("[SSL: TLSV1_ALERT_PROTOCOL_VERSION] tlsv1 alert protocol version (_ssl.c:1006)", "h", None),
    ("", "localhost", None),
]


@pytest.mark.parametrize(("detail", "host", "hint"), TLS_CASES)
def test_tls_hint_says_what_to_check(detail: str, host: str, hint: str | None) -> None:
    assert tls_hint(detail, host) == hint


def test_tls_failure_message_names_the_host_the_certificate_does_not() -> None:
    config = ClientConfig(base_url="https://127.0.0.1:8443", api_key="k")
    _, error = failed_call(FailureKind.TLS, IP_MISMATCH, Phase.CONNECT, config=config)
    assert "TLS handshake with 127.0.0.1:8443 failed: " in str(error)
    assert "the server's certificate does not name 127.0.0.1: " in str(error)


# -- the small pieces ----------------------------------------------------------------------

HOST_PORT_CASES: list[tuple[str, str]] = [
    ("https://kneo.example.com", "kneo.example.com:443"),
    ("http://kneo.example.com", "kneo.example.com:80"),
    ("https://KNEO.example.com:8443", "kneo.example.com:8443"),
    ("http://127.0.0.1:8080", "127.0.0.1:8080"),
    ("http://[::1]:8080", "[::1]:8080"),
    ("https://[::1]", "[::1]:443"),
]


@pytest.mark.parametrize(("origin", "shown"), HOST_PORT_CASES)
def test_host_port_fills_in_the_default_port(origin: str, shown: str) -> None:
    assert host_port(origin) == shown


SECONDS_CASES: list[tuple[float, str]] = [
    (30.0, "30 s"),
    (30, "30 s"),
    (0.5, "0.5 s"),
    (2.25, "2.25 s"),
    (1234.5678, "1234.568 s"),
    (0.0001, "0.0001 s"),
    (0.0, "0 s"),
]


@pytest.mark.parametrize(("value", "shown"), SECONDS_CASES)
def test_seconds_are_shown_short(value: float, shown: str) -> None:
    assert seconds(value) == shown


def test_with_note_goes_before_the_request_id_or_at_the_end() -> None:
    keyed = with_note(KneoError("GET /v1/x -> 429 (request_id=r-1)"), "wait")
    assert str(keyed) == "GET /v1/x -> 429 - wait (request_id=r-1)"
    assert keyed.args == (str(keyed),)
    plain = with_note(KneoError("no id"), "wait")
    assert str(plain) == "no id - wait"


# -- item 7: a Retry-After above the cap, or past the deadline ------------------------------

CAP_NOTE = (
    "Retry-After asks for 120 s, above RetryPolicy.max_retry_after (60 s), so kneo-client did "
    "not wait: reschedule the call after exc.retry_after seconds, or raise max_retry_after to "
    "let the client wait that long"
)


@pytest.mark.parametrize(
    ("status", "cls"), [(429, KneoRateLimited), (503, KneoServiceUnavailableError)]
)
def test_retry_after_above_the_cap_says_the_value_the_cap_and_what_to_do(
    status: int, cls: type[KneoError]
) -> None:
    reply = error_reply(status, "slow_down", "later", **{"Retry-After": "120"})
    trace = drive(operation("GET"), scripted(reply))
    error = trace.error
    assert type(error) is cls
    assert (error.retry_after, error.attempts) == (120.0, 1)
    phrase = "Too Many Requests" if status == 429 else "Service Unavailable"
    assert str(error) == (
        f"GET /v1/x -> {status} {phrase} [slow_down]: later - {CAP_NOTE} "
        f"(request_id={error.sent_request_id})"
    )
    assert error.args == (str(error),)


def test_retry_after_past_the_deadline_says_how_much_was_left() -> None:
    reply = error_reply(429, "slow_down", "later", **{"Retry-After": "30"})
    trace = drive(operation("GET"), scripted(reply), options=CallOptions(deadline=10.0))
    assert str(trace.error) == (
        "GET /v1/x -> 429 Too Many Requests [slow_down]: later - Retry-After asks for 30 s, "
        "past the call's deadline (10 s left), so kneo-client did not wait: reschedule the "
        "call after exc.retry_after seconds, or raise the deadline "
        f"(request_id={trace.error.sent_request_id})"
    )


def test_retry_after_within_the_cap_adds_no_note() -> None:
    reply = error_reply(429, "slow_down", "later", **{"Retry-After": "1"})
    trace = drive(operation("GET"), scripted(reply), policy=ONE_TRY)
    assert "Retry-After asks" not in str(trace.error)


# -- item 3: a base URL ending in /v1 -------------------------------------------------------

NOTE = (
    "base URL {given} ends in /v1, which every request path already starts with (requests "
    "would go to /v1/v1/... and get 404): using {fixed} instead. Drop /v1 from the profile's "
    "url (or KNEO_URL) to silence this warning"
)
# given -> (base URL used, note expected)
BASE_URL_CASES: list[tuple[str, str, bool]] = [
    ("https://kneo.example.com", "https://kneo.example.com", False),
    ("https://kneo.example.com/", "https://kneo.example.com", False),
    ("https://kneo.example.com/v1", "https://kneo.example.com", True),
    ("https://kneo.example.com/v1/", "https://kneo.example.com", True),
    (" http://127.0.0.1:8080/v1 ", "http://127.0.0.1:8080", True),
    ("https://gw.example.com/kneo/v1", "https://gw.example.com/kneo", True),
    ("https://v1", "https://v1", False),
    ("https://kneo.example.com/v10", "https://kneo.example.com/v10", False),
    ("https://kneo.example.com/notv1", "https://kneo.example.com/notv1", False),
    ("https://kneo.example.com/v1/base", "https://kneo.example.com/v1/base", False),
]


@pytest.mark.parametrize(("given", "used", "noted"), BASE_URL_CASES)
def test_base_url_ending_in_v1_is_repaired_with_a_note(given: str, used: str, noted: bool) -> None:
    expected = NOTE.format(given=given.strip().rstrip("/"), fixed=used) if noted else None
    assert normalize_base_url(given) == (used, expected)
    config = ClientConfig(base_url=given, api_key="k")
    assert (config.base_url, config.base_url_note) == (used, expected)


def test_base_url_ending_in_v1_sends_requests_to_v1_once() -> None:
    config = ClientConfig(base_url="https://kneo.example.com/v1", api_key="k")
    trace = drive(operation("GET"), scripted(error_reply(404, "gone")), config=config)
    assert [r.url for r in trace.requests] == ["https://kneo.example.com/v1/x"]


# -- settings refused with the value given --------------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: ClientConfig(base_url="https://k", timeout=0),
            "timeout must be a finite number of seconds > 0, not 0",
        ),
        (
            lambda: CallOptions(timeout=-1.0),
            "timeout must be a finite number of seconds > 0, not -1.0",
        ),
        (
            lambda: CallOptions(deadline=float("nan")),
            "deadline must be a finite number of seconds >= 0, not nan",
        ),
    ],
)
def test_timeouts_are_refused_with_the_value_given(build: object, message: str) -> None:
    assert callable(build)
    with pytest.raises(KneoConfigurationError) as caught:
        build()
    assert str(caught.value) == message

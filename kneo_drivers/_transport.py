"""The one place that names the HTTP transport library (httpcore2, httpcore's maintained
continuation) and maps its exceptions to the core's failure kinds.

Invariants: every request gets finite connect, read, write and pool timeouts; pools are
built with ``retries=0`` (every retry decision belongs to ``kneo_proto``), HTTP/1.1 only,
and TLS verification on (httpcore2's default context, backed by the system trust store, or
``tls_context(ca_bundle)`` for a profile that names its own CA: TLS 1.2 or later, certificates
required, host names checked).
"""

from __future__ import annotations

import importlib
import os
import ssl
import sys
import types
import warnings
from typing import Any, NamedTuple

import h11

from kneo_drivers._log import log_attempt
from kneo_proto import Call, FailureKind, KneoConfigurationError, Send


class _TrioOnDemand(types.ModuleType):
    """Stands in for ``trio`` while httpcore2 is imported; imports it on first attribute use.

    httpcore2 imports trio at import time whenever it is installed (about 150 ms), though it
    touches trio only when a request runs under trio, by which time the caller has imported
    it. Handing httpcore2 this stand-in keeps ``import``-time cost off asyncio and blocking
    users without changing what runs under trio.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(importlib.import_module("trio"), name)


def _import_httpcore() -> types.ModuleType:
    if "trio" in sys.modules or "httpcore2" in sys.modules:
        return importlib.import_module("httpcore2")
    stand_in = _TrioOnDemand("trio")
    sys.modules["trio"] = stand_in
    try:
        return importlib.import_module("httpcore2")
    finally:
        if sys.modules.get("trio") is stand_in:
            del sys.modules["trio"]


_import_httpcore()
import httpcore2 as httpcore  # noqa: E402 - after the trio stand-in above

__all__ = [
    "H11_STATE",
    "HTTP11_CONNECTION",
    "POOL_REQUEST",
    "PRIVATE_ATTRIBUTES",
    "TRANSPORT_ERRORS",
    "failure_kind",
    "httpcore",
    "timeouts",
    "tls_context",
    "connection_of",
    "deliver",
    "holds_unread_bytes",
    "moved",
    "report",
    "to_httpcore_request",
    "unsupported_version",
]

TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)

# Most specific first: PoolTimeout and ConnectTimeout mean nothing was sent.
Kinds = tuple[tuple[type[Exception], FailureKind], ...]
_KINDS: Kinds = (
    (httpcore.PoolTimeout, FailureKind.CONNECT_TIMEOUT),
    (httpcore.ConnectTimeout, FailureKind.CONNECT_TIMEOUT),
    (httpcore.ConnectError, FailureKind.CONNECT),
    (httpcore.TimeoutException, FailureKind.TIMEOUT),
    (httpcore.NetworkError, FailureKind.NETWORK),
    (httpcore.UnsupportedProtocol, FailureKind.CONNECT),
    (httpcore.ProxyError, FailureKind.CONNECT),
    (httpcore.ProtocolError, FailureKind.PROTOCOL),
)


def failure_kind(exc: Exception, kinds: Kinds = _KINDS) -> FailureKind:
    """Return the core's failure kind for a transport exception.

    ``kinds`` maps another library's exception classes, most specific first (httpcore2's by
    default). A connect failure with an ``ssl.SSLError`` behind it is ``TLS``.
    """
    for cls, kind in kinds:
        if isinstance(exc, cls):
            if kind is FailureKind.CONNECT and _tls_failure_in_chain(exc):
                return FailureKind.TLS
            return kind
    return FailureKind.NETWORK


def _tls_failure_in_chain(exc: BaseException) -> bool:
    # httpcore2's pool re-raises a connect failure ``from None``: the ``ssl.SSLError`` then
    # survives only as ``__context__`` (on trio, one link further down).
    seen: set[int] = set()
    link = exc.__cause__ or exc.__context__
    while link is not None and id(link) not in seen:
        if isinstance(link, ssl.SSLError):
            return True
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return False


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """Return a verifying TLS context that trusts the CA certificates in ``ca_bundle``.

    The bundle replaces the system trust store (as a private CA's users want). Verification
    stays on: TLS 1.2 or later, a certificate required, the host name checked.

    Raises:
        KneoConfigurationError: if the file cannot be read or holds no usable certificate.
    """
    path = os.path.expanduser(ca_bundle)
    try:
        context = ssl.create_default_context(cafile=path)
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise KneoConfigurationError(
            f"ca_bundle {ca_bundle!r} cannot be loaded: {reason}"
        ) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    context.check_hostname = True
    return context


def timeouts(seconds: float) -> dict[str, Any]:
    """Return httpcore's ``extensions`` giving every phase the same finite timeout."""
    return {"timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}}


def to_httpcore_request(send: Send) -> httpcore.Request:
    """The ``Send``'s request as httpcore takes it, with ``Host`` added and phase timeouts."""
    request = send.request
    origin, target = _split_url(request.url)
    parts = _ORIGINS.get(origin) or _parse_origin(origin)
    headers = [parts.host_header]
    headers += [(name.encode("ascii"), value.encode("ascii")) for name, value in request.headers]
    return httpcore.Request(
        request.method,
        httpcore.URL(scheme=parts.scheme, host=parts.host, port=parts.port, target=target),
        headers=headers,
        content=request.body,
        extensions=timeouts(send.timeout),
    )


class _Origin(NamedTuple):
    scheme: bytes
    host: bytes
    port: int | None
    host_header: tuple[bytes, bytes]


# A client talks to one origin: parse it once, not on every request.
_ORIGINS: dict[str, _Origin] = {}
_DEFAULT_PORTS = {b"http": 80, b"https": 443}


def _split_url(url: str) -> tuple[str, bytes]:
    slash = url.find("/", url.find("://") + 3)
    if slash == -1:
        return url, b"/"
    return url[:slash], url[slash:].encode("ascii")


def _parse_origin(origin: str) -> _Origin:
    url = httpcore.URL(origin + "/")
    if url.port is None or url.port == _DEFAULT_PORTS.get(url.scheme):
        host_header = bytes(url.host)
    else:
        host_header = b"%b:%d" % (url.host, url.port)
    parts = _Origin(url.scheme, url.host, url.port, (b"Host", host_header))
    if len(_ORIGINS) < 64:
        _ORIGINS[origin] = parts
    return parts


def unsupported_version(response: httpcore.Response) -> str | None:
    """Why a response's HTTP version cannot be trusted, or None for HTTP/1.0 and 1.1.

    h11 parses any single-digit version (``HTTP/0.5``, ``HTTP/2.0``) with HTTP/1.1 framing;
    a peer that sends one is not speaking the protocol we do.
    """
    version = response.extensions.get("http_version", b"HTTP/1.1")
    if version in (b"HTTP/1.1", b"HTTP/1.0"):
        return None
    return f"unsupported HTTP version {bytes(version).decode('latin-1')!r} in the status line"


# -- httpcore2 internals (ADR 0010) ----------------------------------------------------------
# httpcore2 offers no public handle on the connection behind a response, nor on bytes h11
# holds past it. These three private attributes are the only ones kneo-client's code reads,
# each named once here. ``tests/drivers/test_httpcore_private_api.py`` walks every one over a
# real loopback request, so an httpcore2 release that moves one fails CI by name; at run time
# a read that no longer resolves warns once (``RuntimeWarning``, an error under the test
# suite's ``filterwarnings``) instead of falling back silently.
POOL_REQUEST = "_pool_request"  # the pool's response stream -> its PoolRequest (.connection)
HTTP11_CONNECTION = "_connection"  # HTTPConnection -> its HTTP11Connection
H11_STATE = "_h11_state"  # HTTP11Connection -> its h11.Connection (.trailing_data)
PRIVATE_ATTRIBUTES = (POOL_REQUEST, HTTP11_CONNECTION, H11_STATE)

_POOL_CONNECTIONS = (httpcore.HTTPConnection, httpcore.AsyncHTTPConnection)
_HTTP11_CONNECTIONS = (httpcore.HTTP11Connection, httpcore.AsyncHTTP11Connection)
_warned: set[str] = set()


def moved(owner: object, path: str, found: object = None) -> str:
    """The message naming a private read of httpcore2 that no longer resolves."""
    version = getattr(httpcore, "__version__", "unknown")
    return (
        f"httpcore2 {version}: {type(owner).__name__}.{path} is {found!r}, not what "
        "kneo_drivers/_transport.py expects (ADR 0010), so a connection whose last response "
        "cannot be trusted is no longer closed. Please report it to kneo-client; the "
        "httpcore2 release pinned in its requirements/test.txt is known to work."
    )


def _warn_once(owner: object, path: str, found: object) -> None:
    if path not in _warned:
        _warned.add(path)
        warnings.warn(moved(owner, path, found), RuntimeWarning, stacklevel=3)


def connection_of(response: httpcore.Response) -> Any:
    """The pool's connection that carried ``response``, or None if it cannot be found.

    httpcore2 offers no public handle; a driver needs one to close a connection whose last
    response cannot be trusted (``Call.connection_reusable``) rather than leave it in the
    pool. Closing it through its own ``close``/``aclose`` marks it closed, so the pool drops
    it on its next pass. Not found (httpcore2 moved the attribute) warns once.
    """
    pool_request = getattr(response.stream, POOL_REQUEST, None)
    connection = getattr(pool_request, "connection", None)
    if connection is None:
        _warn_once(response.stream, f"{POOL_REQUEST}.connection", connection)
    return connection


def holds_unread_bytes(connection: Any) -> bool:
    """True when the server sent bytes past the response just read on ``connection``.

    h11 keeps them for the connection's next cycle, where they would be read as the next
    request's answer; such a connection must not be reused. (Bytes still in the socket are
    httpcore2's own concern: it probes an idle connection before reusing it.) Only a plain
    pool's ``HTTPConnection`` is inspected (HTTP/2 keeps no such bytes; a proxy pool's
    connections are not looked into); an unexpected shape inside one warns once.
    """
    if not isinstance(connection, _POOL_CONNECTIONS):
        return False
    http11 = getattr(connection, HTTP11_CONNECTION, None)
    if not isinstance(http11, _HTTP11_CONNECTIONS):
        if not isinstance(http11, httpcore.HTTP2Connection | httpcore.AsyncHTTP2Connection):
            _warn_once(connection, HTTP11_CONNECTION, http11)
        return False
    h11_connection = getattr(http11, H11_STATE, None)
    if not isinstance(h11_connection, h11.Connection):
        _warn_once(http11, H11_STATE, h11_connection)
        return False
    return bool(h11_connection.trailing_data[0])


_WHY_STOPPED = {
    FailureKind.TOO_LARGE: "response body over the cap",
    FailureKind.TIMEOUT: "the call's deadline expired while the body was read",
}


def report(
    call: Call[Any],
    send: Send,
    status: int,
    headers: Any,
    body: bytes | FailureKind,
    problem: str | None,
) -> None:
    """Report an attempt whose response (``status``, ``headers``) arrived: its body, or why
    it was not read whole (``problem``, else the reason ``body``'s kind stands for).
    """
    if isinstance(body, FailureKind):
        call.receive_failure(body, problem or _WHY_STOPPED[body])
    else:
        call.receive_response(status, headers, body)
        log_attempt(call, send, status)


def deliver(
    call: Call[Any],
    send: Send,
    response: httpcore.Response,
    body: bytes | FailureKind,
    problem: str | None,
) -> bool:
    """Report an attempt whose response arrived: its body, or why it was not read whole.

    Returns True when the connection must be closed rather than reused: a status line of
    the wrong version (``problem``), a response the core refused as misframed, or bytes past
    the response.
    """
    report(call, send, response.status, response.headers, body, problem)
    return (
        problem is not None
        or not call.connection_reusable
        or holds_unread_bytes(connection_of(response))
    )

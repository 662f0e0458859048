"""The one place that names the HTTP transport library (httpcore2, httpcore's maintained
continuation) and maps its exceptions to the core's failure kinds.

Invariants: every request gets finite connect, read, write and pool timeouts; pools are
built with ``retries=0`` (every retry decision belongs to ``kneo_proto``), HTTP/1.1 only,
and TLS verification on (httpcore2's default context, backed by ``SSL_CERT_FILE``,
``SSL_CERT_DIR`` or the system trust store, or ``tls_context(ca_bundle)`` for a profile that
names its own CA: TLS 1.2 or later, certificates required, host names checked) unless the
caller passed ``verify=False`` (``unverified_context``).
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

from kneo_drivers.contract import TransportFailure
from kneo_proto import (
    DEFAULT_KEEPALIVE_EXPIRY,
    FailureKind,
    KneoConfigurationError,
    Phase,
    Proxy,
    Send,
)


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
    "ANYIO_STREAM",
    "DEFAULT_KEEPALIVE_EXPIRY",
    "H11_STATE",
    "default_tls_context",
    "HTTP11_CONNECTION",
    "MAX_WAIT",
    "POOL_REQUEST",
    "PRIVATE_ATTRIBUTES",
    "TRANSPORT_ERRORS",
    "failure_detail",
    "failure_of",
    "failure_kind",
    "failure_phase",
    "httpcore",
    "timeouts",
    "tls_context",
    "connection_of",
    "holds_unread_bytes",
    "moved",
    "new_async_pool",
    "new_pool",
    "to_httpcore_request",
    "unverified_context",
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
    (httpcore.ProxyError, FailureKind.PROXY),
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


# Where each exception happened, most specific first (its class says; nothing is guessed).
Phases = tuple[tuple[type[Exception], Phase], ...]
_PHASES: Phases = (
    (httpcore.PoolTimeout, Phase.POOL),
    (httpcore.ConnectTimeout, Phase.CONNECT),
    (httpcore.ConnectError, Phase.CONNECT),
    (httpcore.WriteTimeout, Phase.WRITE),
    (httpcore.WriteError, Phase.WRITE),
    (httpcore.ReadTimeout, Phase.READ),
    (httpcore.ReadError, Phase.READ),
)


def failure_phase(exc: Exception, phases: Phases = _PHASES) -> Phase | None:
    """The phase a transport exception names by its class (httpcore2's by default), or None."""
    return next((phase for cls, phase in phases if isinstance(exc, cls)), None)


def failure_detail(exc: BaseException) -> str:
    """The exception's text, with the root cause's when it adds to it.

    httpcore2 wraps the OS or TLS error it met (on trio, inside an exception group, and
    on trio a TLS failure's own text is empty): "All connection attempts failed" says less
    than the ``ConnectionRefusedError: [Errno 111] ...`` below it. The walk stops at a
    cancellation (the event loop's own way of ending a timed-out read, not a cause).
    """
    text = str(exc)
    root = ""
    seen: set[int] = set()
    link: BaseException | None = exc.__cause__ or exc.__context__
    while isinstance(link, Exception) and id(link) not in seen:
        seen.add(id(link))
        said = str(link)
        if said and isinstance(link, ConnectionError):  # asyncio's text omits "refused"
            said = f"{type(link).__name__}: {said}"
        root = said or root
        grouped = link.exceptions if isinstance(link, ExceptionGroup) else ()
        link = grouped[0] if grouped else (link.__cause__ or link.__context__)
    if not root or root in text:
        return text
    return f"{text}: {root}" if text and text not in root else root


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


def default_tls_context() -> ssl.SSLContext:
    """httpcore2's default context (``SSL_CERT_FILE``, else ``SSL_CERT_DIR``, else the system
    store), built once for a client instead of once per connection.

    Building it reads every CA (tens of milliseconds); httpcore2 would do so on every new
    connection, on the event loop, and raise a bare ``OSError`` there for a missing file.

    Raises:
        KneoConfigurationError: naming ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when they cannot be
            loaded.
    """
    try:
        directory = os.environ.get("SSL_CERT_DIR")
        if directory and not os.environ.get("SSL_CERT_FILE") and not os.path.isdir(directory):
            # OpenSSL reads a directory lazily: without this, every handshake would fail.
            raise NotADirectoryError(20, "not a directory")
        return httpcore.default_ssl_context()
    except (OSError, ssl.SSLError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        named = [
            f"{name}={os.environ[name]!r}"
            for name in ("SSL_CERT_FILE", "SSL_CERT_DIR")
            if os.environ.get(name)
        ]
        where = " or ".join(named) or "the system trust store"
        raise KneoConfigurationError(
            f"the default TLS trust cannot be loaded from {where}: {reason}; fix or unset "
            "that variable, or set ca_bundle (KNEO_CA_BUNDLE) to a PEM file of CA certificates"
        ) from None


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


def unverified_context() -> ssl.SSLContext:
    """Return the context of ``verify=False``: any certificate, any host name, TLS 1.2+.

    The connection stays encrypted, but to whoever answers: only for the caller who asked.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False  # before verify_mode: CERT_NONE refuses a checked host
    context.verify_mode = ssl.CERT_NONE
    return context


def _pool(proxy: Proxy | None, *, sync: bool, **options: Any) -> Any:
    """A pool with no retries (the core decides), through ``proxy`` when the plan names one:
    the class ``kneo_drivers/_proxy.py`` chooses for it.
    """
    from kneo_drivers._proxy import pool_class

    cls, proxy_options = pool_class(proxy, sync=sync)
    return cls(**proxy_options, **options, retries=0)


def new_pool(
    *,
    ssl_context: ssl.SSLContext | None,
    max_connections: int,
    keepalive_expiry: float | None,
    network_backend: Any = None,
    proxy: Proxy | None = None,
) -> httpcore.ConnectionPool:
    """A blocking pool as every kneo-client pool is built (``_pool``)."""
    pool: httpcore.ConnectionPool = _pool(
        proxy,
        sync=True,
        ssl_context=ssl_context,
        max_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
        network_backend=network_backend,
    )
    return pool


def new_async_pool(
    *,
    ssl_context: ssl.SSLContext | None,
    max_connections: int,
    keepalive_expiry: float | None,
    network_backend: Any = None,
    proxy: Proxy | None = None,
) -> httpcore.AsyncConnectionPool:
    """An async pool as every kneo-client pool is built (``_pool``)."""
    pool: httpcore.AsyncConnectionPool = _pool(
        proxy,
        sync=False,
        ssl_context=ssl_context,
        max_connections=max_connections,
        keepalive_expiry=keepalive_expiry,
        network_backend=network_backend,
    )
    return pool


# The longest one socket wait or sleep lasts. A profile accepts any finite timeout, but
# Python refuses a socket timeout or a sleep past about 9.2e9 s (``OverflowError``, or
# ``EINVAL`` for a sleep just under it); a wait of a day is as good as forever for one read.
MAX_WAIT = 86_400.0


def timeouts(seconds: float) -> dict[str, Any]:
    """Return httpcore's ``extensions`` giving every phase the same finite timeout (at most
    ``MAX_WAIT``).
    """
    seconds = min(seconds, MAX_WAIT)
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


# -- httpcore2 internals (ADR 0010) ----------------------------------------------------------
# httpcore2 offers no public handle on the connection behind a response, nor on bytes h11
# holds past it, nor on the anyio stream behind an asyncio connection (which
# ``kneo_drivers/_orphans.py`` must close without its ended event loop). These four private
# attributes are the only ones of httpcore2 kneo-client's code reads, each named once here.
# ``tests/drivers/test_httpcore_private_api.py`` (``test_orphans.py`` for the fourth) walks
# every one over a real loopback request, so an httpcore2 release that moves one fails CI by
# name; at run time a read that no longer resolves warns once (``RuntimeWarning``, an error
# under the test suite's ``filterwarnings``) instead of falling back silently.
POOL_REQUEST = "_pool_request"  # the pool's response stream -> its PoolRequest (.connection)
HTTP11_CONNECTION = "_connection"  # HTTPConnection -> its HTTP11Connection
H11_STATE = "_h11_state"  # HTTP11Connection -> its h11.Connection (.trailing_data)
ANYIO_STREAM = "_stream"  # AnyIOStream -> its anyio stream
PRIVATE_ATTRIBUTES = (POOL_REQUEST, HTTP11_CONNECTION, H11_STATE, ANYIO_STREAM)

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


def failure_of(exc: Exception, kinds: Kinds = _KINDS, phases: Phases = _PHASES) -> TransportFailure:
    """A transport exception as the contract's ``TransportFailure``: its kind, its text and
    its phase (httpcore2's classes by default; another library passes its own tables).
    """
    return TransportFailure(
        failure_kind(exc, kinds), failure_detail(exc), failure_phase(exc, phases)
    )

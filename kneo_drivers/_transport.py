"""The one place that names the HTTP transport library (httpcore2, httpcore's maintained
continuation) and maps its exceptions to the core's failure kinds.

Invariants: every request gets finite connect, read, write and pool timeouts; pools are
built with ``retries=0`` (every retry decision belongs to ``kneo_proto``), HTTP/1.1 only,
and TLS verification on (httpcore2's default context, backed by the system trust store).
"""

from __future__ import annotations

import importlib
import ssl
import sys
import types
from typing import Any

from kneo_proto import FailureKind


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

__all__ = ["TRANSPORT_ERRORS", "failure_kind", "httpcore", "timeouts"]

TRANSPORT_ERRORS = (
    httpcore.TimeoutException,
    httpcore.NetworkError,
    httpcore.ProtocolError,
    httpcore.UnsupportedProtocol,
    httpcore.ProxyError,
)

# Most specific first: PoolTimeout and ConnectTimeout mean nothing was sent.
_KINDS: tuple[tuple[type[Exception], FailureKind], ...] = (
    (httpcore.PoolTimeout, FailureKind.CONNECT_TIMEOUT),
    (httpcore.ConnectTimeout, FailureKind.CONNECT_TIMEOUT),
    (httpcore.ConnectError, FailureKind.CONNECT),
    (httpcore.TimeoutException, FailureKind.TIMEOUT),
    (httpcore.NetworkError, FailureKind.NETWORK),
    (httpcore.UnsupportedProtocol, FailureKind.CONNECT),
    (httpcore.ProxyError, FailureKind.CONNECT),
    (httpcore.ProtocolError, FailureKind.PROTOCOL),
)


def failure_kind(exc: Exception) -> FailureKind:
    """Return the core's failure kind for a transport exception."""
    if isinstance(exc, httpcore.ConnectError) and isinstance(exc.__cause__, ssl.SSLError):
        return FailureKind.TLS
    for cls, kind in _KINDS:
        if isinstance(exc, cls):
            return kind
    return FailureKind.NETWORK


def timeouts(seconds: float) -> dict[str, Any]:
    """Return httpcore's ``extensions`` giving every phase the same finite timeout."""
    return {"timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}}

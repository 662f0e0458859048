"""The blocking driver: runs a ``Call`` over httpcore's thread-safe sync pool.

Contract: as the async driver's, without an event loop (so it works in notebooks and in
worker threads of async programs). A blocking read cannot be cancelled, so the pool this
driver builds runs on a ``DeadlineBackend``: every socket wait of an attempt ends by the
call's deadline, even against a server dripping one byte at a time. (Over a caller-owned
pool the deadline is checked between body chunks only.) ``close()`` from another thread
ends calls in flight with ``KneoClientClosedError``. ``LockedTokenBucket`` makes a client's
retry budget safe to share between threads. ``BlockingLoop``, the loop around
the exchanges, serves the httpx driver too. In a child of ``os.fork()`` the pool this driver
built is replaced at the fork (the parent's connections forgotten, nothing sent on them),
and a call over a caller's pool is refused before anything is sent (``_orphans.py``).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable
from contextlib import suppress
from functools import partial
from typing import Any

from kneo_drivers._deadline import DeadlineBackend
from kneo_drivers._locked_budget import LockedTokenBucket
from kneo_drivers._transport import (
    DEFAULT_KEEPALIVE_EXPIRY,
    TRANSPORT_ERRORS,
    connection_of,
    failure_of,
    holds_unread_bytes,
    httpcore,
    new_pool,
    to_httpcore_request,
)
from kneo_drivers.contract import HttpReply, ReadGuard, TransportFailure
from kneo_drivers.loops import BlockingLoop
from kneo_proto import FailureKind, Proxy, Send

__all__ = ["BlockingDriver", "BlockingLoop", "LockedTokenBucket"]


class BlockingDriver(BlockingLoop):
    """Executes calls over an ``httpcore.ConnectionPool``; safe to share between threads.

    Args:
        max_connections: Pool size.
        ssl_context: TLS settings; verifying by default.
        keepalive_expiry: Seconds an idle connection is kept (None: as long as it lasts).
        pool: A caller-owned pool to use instead (not closed by ``close``).
        proxy: The proxy the pool goes through, as ``kneo_proto.plan_proxy`` chose it
            (None: direct).
    """

    def __init__(
        self,
        *,
        max_connections: int = 20,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        pool: httpcore.ConnectionPool | None = None,
        proxy: Proxy | None = None,
    ) -> None:
        super().__init__()
        self._owns_pool = pool is None
        self._backend = DeadlineBackend()
        self._new_pool = partial(
            new_pool,
            ssl_context=ssl_context,
            max_connections=max_connections,
            keepalive_expiry=keepalive_expiry,
            proxy=proxy,
        )
        self._pool = pool or self._new_pool(network_backend=self._backend)

    def _after_fork(self) -> None:
        """In a forked child: forget the parent's connections (their descriptors closed in
        this process only, nothing sent) and start a fresh pool.
        """
        super()._after_fork()  # refused until the fresh pool is in place
        if self._owns_pool:
            self._backend.release_all()
            self._backend = DeadlineBackend()
            self._pool = self._new_pool(network_backend=self._backend)
            self._inherited = False

    def exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        """Send ``send.request`` once over the pool, every socket wait ending by the call's
        deadline; return the reply or the failure.
        """
        if send.remaining is None:
            return self._exchange(send, guard)
        self._backend.set_deadline(time.monotonic() + send.remaining)
        try:
            return self._exchange(send, guard)
        finally:
            self._backend.set_deadline(None)

    def _exchange(self, send: Send, guard: ReadGuard) -> HttpReply | TransportFailure:
        try:
            response = self._pool.handle_request(to_httpcore_request(send))
        except TRANSPORT_ERRORS as exc:
            return failure_of(exc)
        try:
            # Inside the try: its warning (an upstream move) may be an error under -W error.
            connection = connection_of(response)
            version = response.extensions.get("http_version", b"HTTP/1.1")
            body = guard.check_head(version) or read(response.iter_stream(), guard)
            unread = holds_unread_bytes(connection)
        except TRANSPORT_ERRORS as exc:
            return failure_of(exc)
        finally:
            with suppress(*TRANSPORT_ERRORS):
                response.close()
        return HttpReply(response.status, response.headers, body, version, unread, connection)

    def discard(self, connection: Any) -> None:
        """Close a pool connection the core distrusts; the pool drops it on its next pass."""
        if connection is not None:
            connection.close()

    def _close_owned(self) -> None:
        if self._owns_pool:
            self._pool.close()


def read(body: Iterable[bytes], guard: ReadGuard) -> bytes | FailureKind:
    """All of ``body``, or the kind ``guard`` stopped the read with (over the cap, or past
    the deadline: only a caller's pool or client gets there, ours times the read out).
    """
    chunks: list[bytes] = []
    size = 0
    for chunk in body:
        chunks.append(chunk)
        size += len(chunk)
        if (stop := guard.check_body(size)) is not None:
            return stop
    return b"".join(chunks)

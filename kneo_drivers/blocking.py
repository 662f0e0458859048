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
import threading
import time
from collections.abc import Iterable
from contextlib import suppress
from functools import partial
from typing import Any, TypeVar

from kneo_drivers._deadline import DeadlineBackend
from kneo_drivers._orphans import INHERITED, refused, survive_fork
from kneo_drivers._transport import (
    DEFAULT_KEEPALIVE_EXPIRY,
    MAX_WAIT,
    TRANSPORT_ERRORS,
    connection_of,
    deliver,
    httpcore,
    new_pool,
    report_failure,
    to_httpcore_request,
    unsupported_version,
)
from kneo_proto import (
    Call,
    Clock,
    Failed,
    FailureKind,
    Finished,
    Proxy,
    Send,
    Sleep,
    TokenBucket,
)

__all__ = ["BlockingDriver", "LockedTokenBucket"]

R = TypeVar("R")
CLOCK = Clock(monotonic=time.monotonic, wall=time.time)


class LockedTokenBucket(TokenBucket):
    """A ``TokenBucket`` whose withdrawals and deposits are atomic across threads."""

    __slots__ = ("__weakref__", "_lock")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        survive_fork(self)

    def _after_fork(self) -> None:
        # A thread of the parent may have held the lock at the fork: in the child it would
        # never be released.
        self._lock = threading.Lock()

    def withdraw(self, cost: int) -> bool:
        """Take ``cost`` tokens atomically; False (taking nothing) if too few are left."""
        with self._lock:
            return super().withdraw(cost)

    def deposit(self, amount: int) -> None:
        """Put ``amount`` tokens back atomically, never above capacity."""
        with self._lock:
            super().deposit(amount)


class BlockingLoop:
    """The loop every blocking driver runs: one ``_exchange`` per ``Send`` (which keeps to
    the call's deadline), a sleep per ``Sleep``; ``close`` ends calls in other threads.

    A driver for one HTTP library subclasses it and implements ``_exchange``.
    """

    clock = CLOCK

    def __init__(self) -> None:
        self._closed = False
        self._inherited = False  # True in a forked child whose connections are the parent's
        survive_fork(self)

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end; return its ``Finished`` or raise its error."""
        try:
            if self._inherited:
                raise refused(call, INHERITED)
            while not self._closed:
                action = call.next_action()
                if isinstance(action, Send):
                    self._exchange(call, action)
                elif isinstance(action, Sleep):
                    self.sleep(action.seconds)
                elif isinstance(action, Failed):
                    raise action.error
                else:
                    return action
        except BaseException:
            call.abandon()
            raise
        # Closed from another thread: no further attempt, and any connection an attempt racing
        # the close opened is closed too.
        self._close_pool()
        raise call.close()

    def sleep(self, seconds: float) -> None:
        """Block the calling thread for ``seconds`` (in slices the platform accepts)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            time.sleep(min(left, MAX_WAIT))

    def _exchange(self, call: Call[R], send: Send) -> None:
        """Make one exchange, within ``send.remaining``, and report its outcome to ``call``."""
        raise NotImplementedError

    def close(self) -> None:
        """End calls in other threads (``KneoClientClosedError``); close the pool if owned.

        A call waiting for its response when the pool closes under it ends then; one between
        two attempts ends before the next.
        """
        self._closed = True
        self._close_pool()

    def _close_pool(self) -> None:
        """Close the pool this driver created, if any (a caller's is left open)."""

    def _after_fork(self) -> None:
        """In a forked child: refuse every call, before sending (the pool is the caller's)."""
        self._inherited = True


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

    def _exchange(self, call: Call[R], send: Send) -> None:
        if send.remaining is None:
            self._attempt(call, send, None)
            return
        give_up = time.monotonic() + send.remaining
        self._backend.set_deadline(give_up)
        try:
            self._attempt(call, send, give_up)
        finally:
            self._backend.set_deadline(None)

    def _attempt(self, call: Call[R], send: Send, give_up: float | None) -> None:
        try:
            response = self._pool.handle_request(to_httpcore_request(send))
        except TRANSPORT_ERRORS as exc:
            self._report_failure(call, send, exc)
            return
        connection = None
        discard = False
        try:
            # Inside the try: its warning (an upstream move) may be an error under -W error.
            connection = connection_of(response)
            problem = unsupported_version(response)
            try:
                chunks = response.iter_stream()
                body = FailureKind.PROTOCOL if problem else read_capped(chunks, send, give_up)
            except TRANSPORT_ERRORS as exc:
                self._report_failure(call, send, exc)
                return
            discard = deliver(call, send, response, body, problem)
        finally:
            with suppress(*TRANSPORT_ERRORS):
                response.close()
        if discard or self._closed:
            # After the release (which would mark it idle again): closed, the pool drops
            # it. If close() ran during the attempt, the pool may no longer even hold it.
            _close(connection)
        if self._closed:
            self._close_pool()  # and any other connection opened on the closed pool

    def _report_failure(self, call: Call[R], send: Send, exc: Exception) -> None:
        if self._closed:
            # close() ran under this exchange: the failure is the close, not the network (the
            # caller raises KneoClientClosedError), and no connection may outlive it.
            self._close_pool()
            return
        report_failure(call, send, exc)

    def _close_pool(self) -> None:
        if self._owns_pool:
            self._pool.close()


def _close(connection: Any) -> None:
    """Close a pool connection that must not carry another request (see ``connection_of``)."""
    if connection is not None:
        connection.close()


def read_capped(body: Iterable[bytes], send: Send, give_up: float | None) -> bytes | FailureKind:
    """All of ``body``, or why reading stopped: over the cap, or past the deadline."""
    chunks: list[bytes] = []
    size = 0
    for chunk in body:
        chunks.append(chunk)
        size += len(chunk)
        if size > send.max_response_bytes:
            return FailureKind.TOO_LARGE
        if give_up is not None and time.monotonic() > give_up:
            # Only a caller-owned pool or client gets here: ours times the read out.
            return FailureKind.TIMEOUT
    return b"".join(chunks)

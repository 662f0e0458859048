"""A sync network backend that keeps every socket wait within the attempt's deadline, and
whose streams another thread can close safely.

The blocking driver cannot interrupt a read, and a server dripping one byte at a time never
trips a per-read timeout. This backend wraps httpcore2's own: the driver sets a deadline for
the calling thread around each attempt, and every connect, TLS handshake, read and write
waits at most until then (its own timeout, if shorter, still applies). An operation that
would start past the deadline times out at once, as httpcore2's timeout exception for that
phase, which the driver maps like any other. No wait is longer than ``MAX_WAIT`` (the
platform refuses a socket timeout past about 9.2e9 s, which a profile's timeout or a call's
deadline may exceed). ``close()`` of a stream another thread is blocked on shuts the socket
down instead, waking that thread, which then closes it. The backend remembers the streams it
opened, so a forked child can let go of them (``release_all``).
"""

from __future__ import annotations

import ssl
import threading
import time
import weakref
from contextlib import suppress
from socket import SHUT_RDWR
from typing import Any

from kneo_drivers._orphans import release
from kneo_drivers._transport import MAX_WAIT, httpcore

__all__ = ["DeadlineBackend"]


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore2's ``SyncBackend``, with each wait clamped to the calling thread's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()
        self._local = threading.local()
        self._streams: weakref.WeakSet[_DeadlineStream] = weakref.WeakSet()

    def set_deadline(self, at: float | None) -> None:
        """Bound this thread's socket waits by ``at`` (``time.monotonic()``); None: unbound."""
        self._local.at = at

    def clamp(self, timeout: float | None, expired: type[Exception]) -> float | None:
        """``timeout`` shortened to what is left before this thread's deadline, and to
        ``MAX_WAIT``.
        """
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return None if timeout is None else min(timeout, MAX_WAIT)
        left = min(at - time.monotonic(), MAX_WAIT)
        if left <= 0:
            raise expired("the call's deadline expired")
        return left if timeout is None else min(timeout, left)

    def tracked(self, stream: _DeadlineStream) -> _DeadlineStream:
        """``stream``, remembered for ``release_all``."""
        self._streams.add(stream)
        return stream

    def release_all(self) -> None:
        """Close this process's descriptor of every socket opened here, sending nothing
        (in a forked child: the parent's connections stay as they are).
        """
        for stream in list(self._streams):
            release(stream)
        self._streams.clear()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> _DeadlineStream:
        timeout = self.clamp(timeout, httpcore.ConnectTimeout)
        inner = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return self.tracked(_DeadlineStream(inner, self))

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Any = None
    ) -> _DeadlineStream:
        timeout = self.clamp(timeout, httpcore.ConnectTimeout)
        inner = self._inner.connect_unix_socket(path, timeout, socket_options)
        return self.tracked(_DeadlineStream(inner, self))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose waits end by the deadline, and which another thread can close.

    Closing a file descriptor while another thread blocks on it is unsafe: the blocked call
    does not wake, and the number can be reused by a new socket under it. So a close from a
    thread other than the one reading or writing shuts the socket down (which wakes that
    thread with an error) and leaves the close to it.
    """

    def __init__(self, inner: Any, backend: DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend
        self._lock = threading.Lock()
        self._user: int | None = None  # the thread reading or writing now
        self._close_pending = False

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        timeout = self._backend.clamp(timeout, httpcore.ReadTimeout)
        self._enter()
        try:
            data: bytes = self._inner.read(max_bytes, timeout)
        finally:
            self._leave()
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        timeout = self._backend.clamp(timeout, httpcore.WriteTimeout)
        self._enter()
        try:
            self._inner.write(buffer, timeout)
        finally:
            self._leave()

    def close(self) -> None:
        with self._lock:
            if self._user is not None and self._user != threading.get_ident():
                self._close_pending = True
                socket = self._inner.get_extra_info("socket")
                if socket is not None:
                    with suppress(OSError):
                        socket.shutdown(SHUT_RDWR)
                return
        self._inner.close()

    def _enter(self) -> None:
        with self._lock:
            if self._close_pending:
                raise httpcore.ReadError("the connection was closed")
            self._user = threading.get_ident()

    def _leave(self) -> None:
        with self._lock:
            self._user = None
            close_now = self._close_pending
        if close_now:
            self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _DeadlineStream:
        timeout = self._backend.clamp(timeout, httpcore.ConnectTimeout)
        inner = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return self._backend.tracked(_DeadlineStream(inner, self._backend))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)

"""Connections a driver lets go of without the usual goodbye: those a forked child inherited
from its parent, and those bound to an event loop that is no longer the one running.

A pool's connections belong to one process and, for an async pool, to one event loop (an
asyncio loop or a trio run). After ``os.fork()`` the child holds the parent's sockets: a
request sent on one shares the parent's connection, and answers cross processes. After
``asyncio.run`` returns, closing a connection of its loop awaits callbacks that loop will
never run. So a driver that owns its pool releases such connections here and starts a fresh
pool: in the child at once (``survive_fork``), and in a new event loop at its next call.

Invariants of ``release``: it closes this process's file descriptor of the connection and
does nothing else. No byte is sent (no TLS close_notify; no ``shutdown``, which would act on
the socket the parent still uses: the kernel sends a FIN only once no process holds the
connection), and no event loop is touched unless it is alive, idle and this process's (an
ended loop cannot run callbacks; one inherited through ``fork`` shares its epoll instance
with the parent, so unregistering a descriptor there would unregister the parent's).

Releasing an asyncio connection reads three private attributes: httpcore2's
``ANYIO_STREAM`` (named with its others, ADR 0012), then anyio's and asyncio's, named once
here. ``tests/drivers/test_orphans.py`` walks them over a real connection; a read that no
longer resolves warns once and leaves the connection to the garbage collector.
"""

from __future__ import annotations

import enum
import os
import socket
import sys
import warnings
import weakref
from collections.abc import Iterable
from contextlib import suppress
from typing import Any, Protocol

from kneo_drivers._transport import ANYIO_STREAM, httpcore
from kneo_proto import Call, KneoUsageError

__all__ = [
    "ANOTHER_LOOP",
    "ANYIO_STREAM",
    "ASYNCIO_TRANSPORT",
    "CONNECTION_LOST",
    "INHERITED",
    "Runner",
    "RunnerState",
    "TrackingBackend",
    "current_runner",
    "refused",
    "release",
    "runner_state",
    "survive_fork",
]

ASYNCIO_TRANSPORT = "_transport"  # anyio's asyncio SocketStream -> its asyncio transport
CONNECTION_LOST = "_call_connection_lost"  # an asyncio transport's last step (closes the fd)


class ForkAware(Protocol):
    """What ``survive_fork`` takes: an object that knows what to do in a forked child."""

    def _after_fork(self) -> None: ...


_FORK_AWARE: weakref.WeakSet[ForkAware] = weakref.WeakSet()


def survive_fork(owner: ForkAware) -> None:
    """Call ``owner._after_fork()`` in the child of every ``os.fork()`` while it lives."""
    _FORK_AWARE.add(owner)


INHERITED = (
    "this client's http_client was built before os.fork(): its pooled connections are "
    "shared with the parent process, so answers could cross between the two; build the "
    "client and its http_client in the process that uses them"
)
ANOTHER_LOOP = (
    "this client is in use by an event loop still running in another thread, and a client "
    "serves one event loop at a time: build one client per event loop (or thread)"
)


def refused(call: Call[Any] | None, reason: str) -> KneoUsageError:
    """The error of a call refused before anything was sent (the call is given up)."""
    if call is None:
        return KneoUsageError(reason)
    call.abandon()
    return KneoUsageError(
        reason,
        request_id=call.request_id,
        sent_request_id=call.request_id,
        idempotency_key=call.idempotency_key,
        method=call.operation.method,
        path=call.operation.path,
    )


def _after_fork_in_child() -> None:
    # The child runs one thread: nothing here races. An owner that fails stays refusing
    # calls (its ``_after_fork`` marks that first); the others are still seen to, and the
    # failure is reported (Python hands an at-fork hook's exception to sys.unraisablehook).
    failure: Exception | None = None
    for owner in list(_FORK_AWARE):
        try:
            owner._after_fork()
        except Exception as exc:
            failure = failure or exc
    if failure is not None:
        raise failure


if hasattr(os, "register_at_fork"):  # not on Windows, which has no fork
    os.register_at_fork(after_in_child=_after_fork_in_child)


# -- which event loop --------------------------------------------------------------------------

Runner = object  # an asyncio event loop or a trio run's TrioToken


class RunnerState(enum.Enum):
    """What became of the event loop a pool's connections were bound to."""

    RUNNING = "running"  # in another thread: its connections may be in use there
    IDLE = "idle"  # an asyncio loop not closed and not running: it can still take callbacks
    ENDED = "ended"  # closed (``asyncio.run`` returned) or a finished trio run


def current_runner() -> Runner | None:
    """The asyncio loop or trio run of the calling task (None under neither).

    Looked up in ``sys.modules``: a library that is not imported is not running.
    """
    loop: Runner | None = _running_asyncio_loop()
    if loop is not None:
        return loop
    trio = sys.modules.get("trio")
    if trio is not None:
        with suppress(RuntimeError):
            return trio.lowlevel.current_trio_token()  # type: ignore[no-any-return]
    return None


def _running_asyncio_loop() -> Any:
    asyncio = sys.modules.get("asyncio")
    return None if asyncio is None else asyncio._get_running_loop()


def runner_state(runner: Runner) -> RunnerState:
    """Whether ``runner`` (from ``current_runner``) still runs, could run again, or ended."""
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None and isinstance(runner, asyncio.AbstractEventLoop):
        if runner.is_closed():
            return RunnerState.ENDED
        return RunnerState.RUNNING if runner.is_running() else RunnerState.IDLE
    trio = sys.modules["trio"]  # a runner that is no asyncio loop came from trio
    try:
        runner.run_sync_soon(_nothing)  # type: ignore[attr-defined]
    except trio.RunFinishedError:
        return RunnerState.ENDED
    return RunnerState.RUNNING


def _nothing() -> None:
    pass


# -- the connections a pool opened ------------------------------------------------------------


class TrackingBackend(httpcore.AsyncNetworkBackend):
    """httpcore2's backend for the running library (trio's under trio, anyio's otherwise, as
    its default does), remembering each stream it opens so that ``release_all`` can let go
    of them. One pool, one event loop: the library is chosen at the first connection.
    """

    def __init__(self) -> None:
        self._inner: httpcore.AsyncNetworkBackend | None = None
        self._streams: weakref.WeakSet[httpcore.AsyncNetworkStream] = weakref.WeakSet()

    def _backend(self) -> httpcore.AsyncNetworkBackend:
        if self._inner is None:
            on_asyncio = _running_asyncio_loop() is not None
            self._inner = httpcore.AnyIOBackend() if on_asyncio else httpcore.TrioBackend()
        return self._inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        backend = self._backend()
        stream = await backend.connect_tcp(host, port, timeout, local_address, socket_options)
        self._streams.add(stream)
        return stream

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore2's interface
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend().connect_unix_socket(path, timeout, socket_options)
        self._streams.add(stream)
        return stream

    async def sleep(self, seconds: float) -> None:
        await self._backend().sleep(seconds)

    def release_all(self, *, loop_idle: bool = False) -> None:
        """``release`` every stream this backend opened that is still open."""
        for stream in list(self._streams):
            release(stream, loop_idle=loop_idle)
        self._streams.clear()


def release(stream: Any, *, loop_idle: bool = False) -> None:
    """Close this process's descriptor of the socket behind an httpcore2 network stream.

    Nothing is sent and no event loop is touched, except with ``loop_idle``: the stream's
    asyncio loop is this process's, not closed and not running, so its transport is aborted
    the usual way (the loop closes the socket when it next runs).
    """
    sock = stream.get_extra_info("socket")
    if isinstance(sock, socket.socket):  # a blocking pool's (ssl.SSLSocket included)
        sock.close()
        return
    trio = sys.modules.get("trio")
    if trio is not None and isinstance(sock, trio.socket.SocketType):
        if sock.fileno() != -1:
            os.close(sock.detach())
        return
    if sock is None or sock.fileno() == -1:
        return  # closed already
    transport = _read(_read(stream, ANYIO_STREAM), ASYNCIO_TRANSPORT)
    if transport is None:
        return
    if loop_idle:
        transport.abort()
        return
    # The transport's loop would run this once the descriptor is unregistered; it never
    # will. It closes the socket and lets the transport go without a ResourceWarning.
    finish = _read(transport, CONNECTION_LOST)
    if finish is not None:
        with suppress(RuntimeError):  # a waiter's future bound to the ended loop
            finish(None)


_warned: set[str] = set()


def _read(owner: Any, name: str) -> Any:
    """``owner.name``, or None after a one-time warning naming what moved."""
    value = getattr(owner, name, None)
    if value is None and owner is not None and name not in _warned:
        _warned.add(name)
        warnings.warn(
            f"{type(owner).__name__}.{name} is missing, not what kneo_drivers/_orphans.py "
            "expects: a connection of an ended event loop is left to the garbage collector. "
            "Please report it to kneo-client with your httpcore2, anyio and Python versions.",
            RuntimeWarning,
            stacklevel=3,
        )
    return value

"""Drive kneo_proto over urllib3 2 (see docs/embedding.md).

urllib3's own retries and redirects are switched off on every request, so kneo_proto alone
decides. A ``PoolManager`` is thread-safe, and so is this driver.
"""

from __future__ import annotations

import time
from typing import TypeVar

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    EmptyPoolError,
    NewConnectionError,
    ProtocolError,
    ProxyError,
    ReadTimeoutError,
    SSLError,
)

from kneo_proto import Call, Clock, Failed, FailureKind, Finished, Send, Sleep

R = TypeVar("R")


class TooLarge(Exception):
    """The body grew past ``Send.max_response_bytes``."""


# Most specific first: in urllib3 2, NewConnectionError is a ConnectTimeoutError.
KINDS: tuple[tuple[type[Exception], FailureKind], ...] = (
    (NewConnectionError, FailureKind.CONNECT),  # refused, DNS failure: nothing was sent
    (ProxyError, FailureKind.CONNECT),
    (ConnectTimeoutError, FailureKind.CONNECT_TIMEOUT),
    (EmptyPoolError, FailureKind.CONNECT_TIMEOUT),  # PoolManager(block=True) waited too long
    (SSLError, FailureKind.TLS),
    (ReadTimeoutError, FailureKind.TIMEOUT),
    (TimeoutError, FailureKind.TIMEOUT),  # ours: the call's deadline passed mid-body
    (ProtocolError, FailureKind.NETWORK),  # reset, closed early, body cut short, bad status
    (TooLarge, FailureKind.TOO_LARGE),
)
TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, TimeoutError, TooLarge)


def failure_kind(exc: Exception) -> FailureKind:
    """Return the failure kind of a urllib3 exception (or of ours)."""
    return next((kind for cls, kind in KINDS if isinstance(exc, cls)), FailureKind.NETWORK)


class Urllib3Driver:
    """Runs ``Call``s over a ``urllib3.PoolManager`` (the caller's, or a fresh one)."""

    clock = Clock(monotonic=time.monotonic, wall=time.time)

    def __init__(self, pool: urllib3.PoolManager | None = None) -> None:
        self.pool = pool or urllib3.PoolManager()

    def execute(self, call: Call[R]) -> Finished[R]:
        """Run ``call`` to its end: return its ``Finished`` or raise its ``KneoError``."""
        try:
            while True:
                match call.next_action():
                    case Send() as send:
                        self._exchange(call, send)
                    case Sleep(seconds=seconds):
                        self.sleep(seconds)
                    case Failed(error=error):
                        raise error
                    case Finished() as finished:
                        return finished
        except BaseException:  # the call failed, or the caller gave up (KeyboardInterrupt)
            call.abandon()
            raise

    def sleep(self, seconds: float) -> None:
        """Wait between attempts, only when a ``Sleep`` says so."""
        time.sleep(seconds)

    def _exchange(self, call: Call[R], send: Send) -> None:
        req = send.request
        give_up = None if send.remaining is None else time.monotonic() + send.remaining
        # Each phase gets Send.timeout; total= cuts the wait for the answer to the deadline.
        timeout = urllib3.Timeout(total=send.remaining, connect=send.timeout, read=send.timeout)
        try:
            response = self.pool.urlopen(
                req.method,
                req.url,
                body=req.body or None,
                headers=urllib3.HTTPHeaderDict(req.headers),  # Accept-Encoding: identity too
                retries=False,  # no retry, and errors raised as they are (no MaxRetryError)
                redirect=False,  # a 3xx goes back to the call, which reports it
                preload_content=False,
                decode_content=False,
                timeout=timeout,
                pool_timeout=send.timeout,
            )
            body = read_body(response, send.max_response_bytes, give_up)
        except TRANSPORT_ERRORS as exc:
            call.receive_failure(failure_kind(exc), str(exc))
            return
        call.receive_response(response.status, response.headers.iteritems(), body)

    def close(self) -> None:
        """Close the pool's connections."""
        self.pool.clear()


def read_body(response: urllib3.BaseHTTPResponse, cap: int, give_up: float | None) -> bytes:
    """Read the whole body; fail past ``cap`` bytes or past the call's deadline."""
    body = bytearray()
    try:
        while chunk := response.read1(64 * 1024):  # one recv, so the checks run often
            body += chunk
            if len(body) > cap:
                raise TooLarge(f"response body over {cap} bytes")
            if give_up is not None and time.monotonic() > give_up:
                raise TimeoutError("the call's deadline passed while reading the body")
    except BaseException:
        response.close()  # bytes left unread: this connection must not be reused
        raise
    finally:
        response.release_conn()
    return bytes(body)

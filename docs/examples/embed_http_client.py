"""Drive kneo_proto over the standard library's ``http.client`` (see docs/embedding.md).

One keep-alive connection per origin and no locks: give each thread its own driver.
"""

from __future__ import annotations

import http.client
import selectors
import socket
import ssl
import time
from typing import TypeVar
from urllib.parse import urlsplit

from kneo_proto import Call, Clock, Failed, FailureKind, Finished, Send, Sleep

R = TypeVar("R")


class TooLarge(Exception):
    """The body grew past ``Send.max_response_bytes``."""


def failure_kind(exc: Exception, sent: bool) -> FailureKind:
    """Classify a transport exception by the phase it ended: before or after sending."""
    if isinstance(exc, TooLarge):
        return FailureKind.TOO_LARGE
    if not sent:  # connect and TLS handshake: no byte of the request has left
        if isinstance(exc, ssl.SSLError):
            return FailureKind.TLS
        if isinstance(exc, TimeoutError):  # socket.timeout
            return FailureKind.CONNECT_TIMEOUT
        return FailureKind.CONNECT  # ConnectionRefusedError, socket.gaierror, ...
    if isinstance(exc, TimeoutError):
        return FailureKind.TIMEOUT
    lost = (http.client.RemoteDisconnected, http.client.IncompleteRead)
    if isinstance(exc, http.client.HTTPException) and not isinstance(exc, lost):
        return FailureKind.PROTOCOL  # BadStatusLine, LineTooLong, ...
    return FailureKind.NETWORK  # reset, broken pipe, closed early, body cut short


class HttpClientDriver:
    """Runs ``Call``s over ``http.client``."""

    clock = Clock(monotonic=time.monotonic, wall=time.time)

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._tls = ssl_context or ssl.create_default_context()
        self._conns: dict[tuple[str, str], http.client.HTTPConnection] = {}

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
        req, conn, sent = send.request, self._connection(send.request.url), False
        give_up = None if send.remaining is None else time.monotonic() + send.remaining
        try:
            if conn.sock is not None and _closed_by_peer(conn.sock):
                conn.close()  # the server dropped this idle connection: reconnect, not resend
            conn.timeout = send.timeout  # per phase: the connect, then each send and recv
            if conn.sock is None:
                conn.connect()
            conn.sock.settimeout(send.timeout)
            sent = True  # from here on the server may have seen (part of) the request
            conn.putrequest(req.method, req.target, skip_accept_encoding=True)
            for name, value in req.headers:  # Accept-Encoding: identity is among them
                conn.putheader(name, value)
            conn.endheaders(req.body or None)
            response = conn.getresponse()
            body = read_body(response, send.max_response_bytes, give_up)
        except (OSError, http.client.HTTPException, TooLarge) as exc:
            conn.close()  # in an unknown state, or a body left unread: start afresh
            if isinstance(exc, http.client.ImproperConnectionState):
                raise  # a bug in this driver, not a transport failure
            call.receive_failure(failure_kind(exc, sent), str(exc))
            return
        call.receive_response(response.status, response.getheaders(), body)

    def _connection(self, url: str) -> http.client.HTTPConnection:
        scheme, netloc, *_ = urlsplit(url)
        if (scheme, netloc) not in self._conns:
            self._conns[scheme, netloc] = (
                http.client.HTTPSConnection(netloc, context=self._tls)
                if scheme == "https"
                else http.client.HTTPConnection(netloc)
            )
        return self._conns[scheme, netloc]

    def close(self) -> None:
        """Close every connection."""
        for conn in self._conns.values():
            conn.close()


def read_body(response: http.client.HTTPResponse, cap: int, give_up: float | None) -> bytes:
    """Read the whole body; fail past ``cap`` bytes or past the call's deadline."""
    body = bytearray()
    while chunk := response.read1(64 * 1024):  # read1: one recv, so the checks run often
        body += chunk
        if len(body) > cap:
            raise TooLarge(f"response body over {cap} bytes")
        if give_up is not None and time.monotonic() > give_up:
            raise TimeoutError("the call's deadline passed while reading the body")
    if response.length:  # read1 hides a body cut short: report it as read() would
        raise http.client.IncompleteRead(bytes(body), response.length)
    response.close()  # before 3.13, read1 leaves it open, blocking the next request
    return bytes(body)


def _closed_by_peer(sock: socket.socket) -> bool:
    """An idle keep-alive socket turns readable only when the server has closed it."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout=0))

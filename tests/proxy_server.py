"""Loopback proxies for the proxy tests: an HTTP proxy (forwarding and CONNECT) and SOCKS5.

``LoopbackProxy("http")`` or ``LoopbackProxy("socks5")`` listens on 127.0.0.1:0, serves each
connection on its own thread and records what it was asked (``Asked``): the method and target,
or the SOCKS address and its type, whether the credentials matched, and (HTTP) the headers.
The names in ``hosts`` are resolved by the proxy alone, to 127.0.0.1 (the port as asked): a
client that reaches such a name through the proxy never looked it up itself, which the network
guard would have refused. Any other name gets 502 (HTTP) or "host unreachable" (SOCKS).

HTTP: ``CONNECT host:port`` answers 200 and relays bytes both ways (TLS passes through); a
request in absolute form (``GET http://host:port/path HTTP/1.1``) is sent on in origin form
without the proxy's headers and with ``Connection: close``, and the answer relayed with
``Connection: close``, so each forwarded request has its own connection. With ``credentials``,
a request without the right ``Proxy-Authorization: Basic`` gets 407 and the connection closes.

SOCKS5 (RFC 1928, RFC 1929): no authentication, or user name and password when ``credentials``
are set (a wrong pair gets status 1 and the connection closes); CONNECT to an IPv4 address, a
domain name or an IPv6 address.

Every socket has a timeout, every wait is bounded; ``stop()`` (leaving ``running(...)``) cuts
every connection and joins every thread within a bound, and a thread's unexpected error is
re-raised so that a broken proxy fails its test (``RecordingServer``'s plumbing, reused).
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import select
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlsplit

from tests.support.tls import SOCKET_TIMEOUT, RecordingServer, serving

__all__ = ["Asked", "LoopbackProxy", "running"]

MAX_HEAD = 64 * 1024
_HOP_HEADERS = frozenset({"proxy-authorization", "proxy-connection", "connection", "keep-alive"})


@dataclass(frozen=True)
class Asked:
    """One thing a client asked the proxy for.

    Attributes:
        connection: The number of the client's connection to the proxy (from 0).
        method: ``CONNECT``, the forwarded request's method, or ``SOCKS5``.
        target: ``host:port`` (CONNECT, SOCKS5) or the absolute URL (forwarding).
        auth: ``"none"`` (no credentials offered), ``"ok"`` or ``"bad"``.
        address_type: SOCKS5 only: ``"domain"``, ``"ipv4"`` or ``"ipv6"``.
        headers: HTTP only: the request's headers as the proxy received them.
    """

    connection: int
    method: str
    target: str
    auth: str
    address_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


@dataclass
class LoopbackProxy(RecordingServer):
    """An HTTP or SOCKS5 proxy on 127.0.0.1 (a free port); see the module docstring.

    ``RecordingServer``'s listener, connection threads, ``stop`` and ``serving`` carry it;
    this class replaces only what is done with each connection.
    """

    kind: Literal["http", "socks5"] = "http"
    hosts: frozenset[str] = frozenset()
    credentials: tuple[str, str] | None = None
    asked: list[Asked] = field(default_factory=list)
    connections: int = 0

    def proxy_url(
        self, scheme: str | None = None, user: str | None = None, password: str = ""
    ) -> str:
        """The proxy's URL with ``scheme`` (default: its kind) and, when given, credentials."""
        userinfo = "" if user is None else f"{quote(user, safe='')}:{quote(password, safe='')}@"
        return f"{scheme or self.kind}://{userinfo}127.0.0.1:{self.port}"

    def _track(self, sock: socket.socket) -> socket.socket:
        sock.settimeout(SOCKET_TIMEOUT)
        with self._lock:
            self._sockets.add(sock)
        return sock

    def _serve(self, sock: socket.socket) -> None:
        with self._lock:
            number = self.connections
            self.connections += 1
        opened = [sock]  # and the connection upstream, once there is one
        try:
            if self.kind == "http":
                self._serve_http(sock, number, opened)
            else:
                self._serve_socks(sock, number, opened)
        except (OSError, EOFError):
            pass  # the client went away, or the proxy is stopping
        except BaseException as exc:  # a broken proxy fails the test when it stops
            self.errors.append(exc)
        finally:
            for each in opened:
                with self._lock:
                    self._sockets.discard(each)
                each.close()

    def _record(self, asked: Asked) -> None:
        with self._lock:
            self.asked.append(asked)

    def _connect(self, host: str, port: int, opened: list[socket.socket]) -> socket.socket | None:
        """A connection to ``host``:``port`` as this proxy resolves it (added to ``opened``),
        or None."""
        address = "127.0.0.1" if host.lower() in self.hosts else host
        try:
            if not ipaddress.ip_address(address).is_loopback:
                return None
            upstream = socket.create_connection((address, port), SOCKET_TIMEOUT)
        except (OSError, ValueError):  # refused, or a name only the world could resolve
            return None
        opened.append(self._track(upstream))
        return upstream

    def _relay(self, client: socket.socket, upstream: socket.socket, rewrite: bool) -> None:
        """Copy bytes both ways until one side closes; with ``rewrite``, the answer's head
        gets ``Connection: close``."""
        peer = {client: upstream, upstream: client}
        head = bytearray() if rewrite else None
        while not self._stopping.is_set():
            ready, _, _ = select.select([client, upstream], [], [], 0.05)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is upstream and head is not None:
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    data, head = _closing_head(bytes(head)), None
                peer[sock].sendall(data)

    # -- HTTP ---------------------------------------------------------------------------------

    def _serve_http(self, client: socket.socket, number: int, opened: list[socket.socket]) -> None:
        head, rest = _read_head(client)
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = tuple(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in lines[1:] if line)
        )
        auth = self._http_auth(headers)
        self._record(Asked(number, method, target, auth, headers=headers))
        if self.credentials is not None and auth != "ok":
            client.sendall(_answer(407, "Proxy Authentication Required", proxy_auth=True))
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = self._connect(host.strip("[]"), int(port), opened)
            if upstream is None:
                client.sendall(_answer(502, "Bad Gateway"))
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._relay(client, upstream, rewrite=False)
            return
        url = urlsplit(target)
        upstream = self._connect(url.hostname or "", url.port or 80, opened)
        if upstream is None:
            client.sendall(_answer(502, "Bad Gateway"))
            return
        kept = [f"{k}: {v}" for k, v in headers if k.lower() not in _HOP_HEADERS]
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        forwarded = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"])
        upstream.sendall(forwarded.encode("latin-1") + b"\r\n\r\n" + rest)
        self._relay(client, upstream, rewrite=True)

    def _http_auth(self, headers: tuple[tuple[str, str], ...]) -> str:
        given = next((v for k, v in headers if k.lower() == "proxy-authorization"), None)
        if given is None:
            return "none"
        if self.credentials is None:
            return "bad"  # offered where none is wanted: still worth a look in the test
        user, password = self.credentials
        expected = base64.b64encode(f"{user}:{password}".encode()).decode()
        return "ok" if given == f"Basic {expected}" else "bad"

    # -- SOCKS5 -------------------------------------------------------------------------------

    def _serve_socks(self, client: socket.socket, number: int, opened: list[socket.socket]) -> None:
        version, count = _recv_exact(client, 2)
        methods = _recv_exact(client, count)
        if version != 5:
            return
        wanted = 2 if self.credentials is not None else 0
        if wanted not in methods:
            client.sendall(b"\x05\xff")
            self._record(Asked(number, "SOCKS5", "", "none"))
            return
        client.sendall(bytes([5, wanted]))
        auth = "none"
        if wanted == 2:
            auth = self._socks_auth(client)
            if auth != "ok":
                self._record(Asked(number, "SOCKS5", "", auth))
                return
        _, command, _, address_type = _recv_exact(client, 4)
        host, kind = _socks_address(client, address_type)
        port = int.from_bytes(_recv_exact(client, 2), "big")
        self._record(Asked(number, "SOCKS5", f"{host}:{port}", auth, address_type=kind))
        upstream = self._connect(host, port, opened) if command == 1 else None
        if upstream is None:
            client.sendall(bytes([5, 4 if command == 1 else 7, 0, 1, 0, 0, 0, 0, 0, 0]))
            return
        client.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + port.to_bytes(2, "big"))
        self._relay(client, upstream, rewrite=False)

    def _socks_auth(self, client: socket.socket) -> str:
        assert self.credentials is not None
        _, length = _recv_exact(client, 2)
        user = _recv_exact(client, length).decode()
        password = _recv_exact(client, _recv_exact(client, 1)[0]).decode()
        ok = (user, password) == self.credentials
        client.sendall(bytes([1, 0 if ok else 1]))
        return "ok" if ok else "bad"


@contextlib.contextmanager
def running(proxy: LoopbackProxy) -> Iterator[LoopbackProxy]:
    """Run ``proxy`` for the block (``serving``: a connection thread's error is re-raised)."""
    with serving(proxy):
        yield proxy


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("the peer closed the connection")
        data += chunk
    return bytes(data)


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """(the head without its blank line, the bytes read past it)."""
    data = bytearray()
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk or len(data) > MAX_HEAD:
            raise EOFError("no complete request head")
        data += chunk
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    return head, rest


def _socks_address(sock: socket.socket, address_type: int) -> tuple[str, str]:
    if address_type == 1:
        return socket.inet_ntop(socket.AF_INET, _recv_exact(sock, 4)), "ipv4"
    if address_type == 4:
        return socket.inet_ntop(socket.AF_INET6, _recv_exact(sock, 16)), "ipv6"
    return _recv_exact(sock, _recv_exact(sock, 1)[0]).decode("ascii"), "domain"


def _answer(status: int, reason: str, *, proxy_auth: bool = False) -> bytes:
    body = f"{status} {reason} (test proxy)\n".encode()
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: text/plain"]
    lines += ['Proxy-Authenticate: Basic realm="kneo-test"'] if proxy_auth else []
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return "\r\n".join(lines).encode() + b"\r\n\r\n" + body


def _closing_head(data: bytes) -> bytes:
    """A response head (and what follows it) with ``Connection: close`` as its only
    connection header."""
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = [
        line
        for line in head.split(b"\r\n")
        if line.split(b":", 1)[0].strip().lower() not in (b"connection", b"keep-alive")
    ]
    return b"\r\n".join([*lines, b"Connection: close"]) + b"\r\n\r\n" + rest

"""The network guard (plan 3.1 and T40): no test reaches past the loopback interface.

``tests/conftest.py`` installs a ``NetworkGuard`` around every test (its fixtures included).
It wraps the four doors every client in this suite goes through: ``socket.socket.connect``
and ``connect_ex`` (asyncio, trio and httpcore's sync backend all end there),
``socket.create_connection`` and ``socket.getaddrinfo``. A destination is allowed when it is
in 127.0.0.0/8, is ``::1`` (or an IPv4-mapped loopback address), or is the name
``localhost``; anything else is refused *before* the real call, so no packet and no DNS
query leaves the machine: a connect raises ``NetworkGuardError`` (an ``OSError``, which
clients see as a refused connection) and a lookup raises ``socket.gaierror``. ``*.invalid``
names, the ones tests use for "a foreign host", are refused like every other name.

Each refusal is a violation: it is recorded with the test's node ID, and the fixture fails
the test at teardown, whatever the test itself concluded from the error. A test that means
to provoke one (the guard's own tests) wraps it in ``guard.expect_violations()``.
``TOTALS`` sums the session's checks and violations for the T40 figure.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

__all__ = ["TOTALS", "NetworkGuard", "NetworkGuardError", "is_loopback_destination"]

# What the whole session checked and refused (the T40 figure).
TOTALS: Counter[str] = Counter()

# Host values a lookup may carry without naming a destination: binding to "any".
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})
_INET_FAMILIES = frozenset({socket.AF_INET, socket.AF_INET6})


class NetworkGuardError(PermissionError):
    """A test tried to connect outside loopback; nothing was sent."""


def _text(host: object) -> str | None:
    if host is None:
        return None
    if isinstance(host, bytes | bytearray):
        return bytes(host).decode("ascii", "replace")
    return str(host)


def is_loopback_destination(host: object) -> bool:
    """True for 127.0.0.0/8, ``::1`` (also IPv4-mapped), and exactly ``localhost``."""
    text = _text(host)
    if text is None:
        return False
    lowered = text.lower().rstrip(".").strip("[]")
    if lowered == "localhost":
        return True
    try:
        address = ipaddress.ip_address(lowered)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class NetworkGuard:
    """Refuses and records every non-loopback connect and lookup while installed.

    Attributes:
        test: The node ID of the test it guards.
        violations: One line per refused connect or lookup.
        connects: Connects checked (loopback ones included).
        lookups: Name lookups checked.
    """

    def __init__(self, test: str) -> None:
        self.test = test
        self.violations: list[str] = []
        self.connects = 0
        self.lookups = 0
        self._lock = threading.Lock()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Wrap the socket module's doors; ``monkeypatch`` undoes it after the test."""
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_create_connection = socket.create_connection
        real_getaddrinfo = socket.getaddrinfo
        guard = self

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check_connect(sock.family, address, "connect")
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check_connect(sock.family, address, "connect_ex")
            return real_connect_ex(sock, address)

        def create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
            guard.check_connect(socket.AF_INET, address, "create_connection")
            return real_create_connection(address, *args, **kwargs)

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check_lookup(host)
            return real_getaddrinfo(host, *args, **kwargs)

        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
        monkeypatch.setattr(socket, "create_connection", create_connection)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def check_connect(self, family: int, address: Any, door: str) -> None:
        """Raise ``NetworkGuardError`` (recording it) unless ``address`` is loopback."""
        if family not in _INET_FAMILIES or not isinstance(address, tuple):
            return  # a Unix socket, or a socketpair's: never off the machine
        with self._lock:
            self.connects += 1
        if is_loopback_destination(address[0]):
            return
        self._refuse(f"{door} to {address!r}")
        raise NetworkGuardError(
            errno.EACCES, f"network guard: {address[0]!r} is not a loopback address"
        )

    def check_lookup(self, host: Any) -> None:
        """Raise ``socket.gaierror`` (recording it) before looking up a non-loopback name."""
        with self._lock:
            self.lookups += 1
        text = _text(host)
        if text is None or text in _WILDCARDS or is_loopback_destination(text):
            return
        self._refuse(f"lookup of {text!r}")
        raise socket.gaierror(
            socket.EAI_NONAME, f"network guard: lookup of {text!r} refused (not loopback)"
        )

    def _refuse(self, what: str) -> None:
        with self._lock:
            self.violations.append(f"{what} in {self.test}")

    @contextlib.contextmanager
    def expect_violations(self) -> Iterator[list[str]]:
        """Collect the violations of the block into the yielded list instead of failing."""
        caught: list[str] = []
        before = len(self.violations)
        try:
            yield caught
        finally:
            with self._lock:
                caught += self.violations[before:]
                del self.violations[before:]
                TOTALS["expected violations"] += len(caught)

    def finish(self, fail: Callable[[str], object]) -> None:
        """Add this test's counts to ``TOTALS``; call ``fail`` if it had a violation."""
        TOTALS["tests"] += 1
        TOTALS["connects"] += self.connects
        TOTALS["lookups"] += self.lookups
        TOTALS["violations"] += len(self.violations)
        if self.violations:
            fail(
                f"{len(self.violations)} network-guard violation(s): the test reached for a "
                "non-loopback destination:\n" + "\n".join(self.violations[:20])
            )

"""Messages that explain themselves: what went wrong, where, and what to do about it.

Invariants: pure functions of what the core already knows (the failure's kind, the phase
and detail its driver reported, the origin of the request, the timeout in force, the
deadline) and nothing else. A message never contains a request header value, so never the
API key. Each hint names a setting the user can change (``timeout``, ``deadline``,
``max_connections``, ``ca_bundle``/``KNEO_CA_BUNDLE``, ``max_retry_after``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kneo_proto._actions import FailureKind, Phase
from kneo_proto._errors import KneoError

__all__ = [
    "host_port",
    "retry_after_note",
    "seconds",
    "tls_hint",
    "transport_message",
    "with_note",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}

# What failed, by kind and phase (None: the driver did not say); "{at}" is ``host:port``.
_WHAT: dict[tuple[FailureKind, Phase | None], str] = {
    (FailureKind.CONNECT_TIMEOUT, Phase.CONNECT): "timed out connecting to {at}",
    (FailureKind.CONNECT_TIMEOUT, Phase.POOL): "timed out waiting for a free connection to {at}",
    (FailureKind.CONNECT_TIMEOUT, None): "timed out before sending to {at}",
    (FailureKind.TIMEOUT, Phase.WRITE): "timed out sending the request to {at}",
    (FailureKind.TIMEOUT, Phase.READ): "timed out waiting for the response from {at}",
    (FailureKind.NETWORK, Phase.WRITE): "connection to {at} failed while sending the request",
    (FailureKind.NETWORK, Phase.READ): "connection to {at} failed while reading the response",
}
_WHAT_BY_KIND: dict[FailureKind, str] = {
    FailureKind.CONNECT: "could not connect to {at}",
    FailureKind.CONNECT_TIMEOUT: "timed out before sending to {at}",
    FailureKind.TLS: "TLS handshake with {at} failed",
    FailureKind.TIMEOUT: "timed out talking to {at}",
    FailureKind.NETWORK: "connection to {at} failed",
    FailureKind.PROTOCOL: "invalid HTTP response from {at}",
    FailureKind.TOO_LARGE: "response body from {at} too large",
    FailureKind.PROXY: "the proxy failed the connection to {at}",  # the call words its own
}
# Kinds whose message shows the phase and the timeout in force.
_TIMED = frozenset({FailureKind.CONNECT, FailureKind.CONNECT_TIMEOUT, FailureKind.TIMEOUT})
_DEADLINE_KINDS = frozenset({FailureKind.CONNECT_TIMEOUT, FailureKind.TIMEOUT})

_HINTS: dict[tuple[FailureKind, Phase | None], str] = {
    (FailureKind.CONNECT_TIMEOUT, Phase.CONNECT): (
        "the host did not accept a connection in time: check the URL's host and port and any "
        "firewall or proxy in between, or raise timeout"
    ),
    (FailureKind.CONNECT_TIMEOUT, Phase.POOL): (
        "every pooled connection stayed busy: make fewer calls at once, raise "
        "max_connections, or raise timeout"
    ),
    (FailureKind.TIMEOUT, Phase.READ): (
        "the platform did not answer in time: raise timeout (seconds per phase, e.g. "
        "client.with_options(timeout=60)) if its answers are slow"
    ),
    (FailureKind.TIMEOUT, Phase.WRITE): (
        "the request could not be sent in time: check the network, or raise timeout"
    ),
}
_REFUSED_HINT = (
    "nothing accepted the connection there: check that the platform is running and that "
    "the profile's url has the right host and port"
)
_CONNECT_HINT = "check the URL's host name and port, and the network or proxy in between"
_DEADLINE_HINT = (
    "the call's deadline ended it: raise deadline (client.with_options(deadline=...)), or "
    "leave it unset to bound each attempt by timeout alone"
)
_TOO_LARGE_HINT = "raise max_response_bytes, or ask for less (a smaller limit= per page)"

# TLS failures, by the OpenSSL text in the driver's detail, most specific first.
_TLS_HINTS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("WRONG_VERSION_NUMBER",),
        "the server answered in plain HTTP, not TLS: this port serves http://, so use an "
        "http:// URL (allowed with the key only to a loopback host) or the platform's https "
        "port",
    ),
    (
        ("UNEXPECTED_EOF_WHILE_READING", "EOF occurred in violation of protocol"),
        "the server closed the connection during the handshake: check that this port serves "
        "https (a plain-http port needs an http:// URL)",
    ),
    (
        ("Hostname mismatch", "IP address mismatch"),
        "the server's certificate does not name {host}: use the host name the certificate "
        "was issued for in the profile's url, or have the certificate reissued for {host}",
    ),
    (
        ("certificate has expired",),
        "the server's certificate has expired (or this machine's clock is wrong): renew the "
        "certificate",
    ),
    (
        ("CERTIFICATE_VERIFY_FAILED",),
        "the certificate is not signed by a CA this client trusts: by default the system's "
        "trust store (or the file SSL_CERT_FILE names), else only the CA certificates in the "
        "PEM file that ca_bundle (in the profile) or KNEO_CA_BUNDLE names; for a private CA, "
        "set one of them to that CA's PEM file",
    ),
)


def seconds(value: float) -> str:
    """``value`` as a short duration: ``30 s``, ``0.5 s``, ``0.0001 s``."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    if text in ("0", "-0") and value:
        text = f"{value:.1g}"
    return f"{text} s"


def host_port(origin: str) -> str:
    """``host:port`` of an origin such as ``https://kneo.example.com`` (the port filled in)."""
    parts = urlsplit(origin)
    host = parts.hostname or ""
    shown = f"[{host}]" if ":" in host else host
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{shown}:{port}"


def tls_hint(detail: str, host: str) -> str | None:
    """What to check after a TLS failure whose OpenSSL text is ``detail``, or None."""
    for markers, hint in _TLS_HINTS:
        if any(marker in detail for marker in markers):
            return hint.format(host=host)
    return None


def transport_message(
    kind: FailureKind,
    *,
    origin: str,
    detail: str,
    phase: Phase | None,
    timeout: float,
    deadline: float | None,
) -> str:
    """What a transport failure was, where, and what to do: the middle of an error message.

    Args:
        kind: The failure's kind.
        origin: The request's origin (``scheme://host[:port]``).
        detail: The driver's text for the failure (already cut to length), or "".
        phase: The phase the driver reported, or None.
        timeout: The per-phase timeout the attempt ran with.
        deadline: The call's deadline in seconds when it ran out during the attempt, else
            None.
    """
    at = host_port(origin)
    what = _WHAT.get((kind, phase)) or _WHAT_BY_KIND[kind]
    message = what.format(at=at)
    facts = [f"{phase.value} phase"] if phase is not None and kind is not FailureKind.TLS else []
    if kind in _TIMED:
        facts.append(f"timeout {seconds(timeout)}")
    ended = deadline is not None and kind in _DEADLINE_KINDS
    if ended:
        facts.append(f"the call's deadline of {seconds(deadline or 0.0)} ran out")
    if facts:
        message += f" ({', '.join(facts)})"
    if detail:
        message += f": {detail}"
    hint = _DEADLINE_HINT if ended else _hint(kind, phase, detail, origin)
    return message if hint is None else f"{message} - {hint}"


def _hint(kind: FailureKind, phase: Phase | None, detail: str, origin: str) -> str | None:
    if kind is FailureKind.CONNECT:
        return _REFUSED_HINT if "refused" in detail.lower() else _CONNECT_HINT
    if kind is FailureKind.TLS:
        return tls_hint(detail, urlsplit(origin).hostname or "")
    if kind is FailureKind.TOO_LARGE:
        return _TOO_LARGE_HINT
    return _HINTS.get((kind, phase))


def retry_after_note(retry_after: float, cap: float, remaining: float | None) -> str:
    """Why a ``Retry-After`` of ``retry_after`` seconds was not waited for, and what to do."""
    asked = f"Retry-After asks for {seconds(retry_after)}"
    if retry_after > cap:
        return (
            f"{asked}, above RetryPolicy.max_retry_after ({seconds(cap)}), so kneo-client did "
            "not wait: reschedule the call after exc.retry_after seconds, or raise "
            "max_retry_after to let the client wait that long"
        )
    left = seconds(max(remaining or 0.0, 0.0))
    return (
        f"{asked}, past the call's deadline ({left} left), so kneo-client did not wait: "
        "reschedule the call after exc.retry_after seconds, or raise the deadline"
    )


def with_note(error: KneoError, note: str) -> KneoError:
    """``error`` with `` - note`` added to its message, before its ``(request_id=...)``."""
    head, marker, tail = error.message.rpartition(" (request_id=")
    error.message = f"{head} - {note}{marker}{tail}" if marker else f"{error.message} - {note}"
    error.args = (error.message,)
    return error

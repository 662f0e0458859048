"""Proxies: whether a client's requests go through a proxy, which one, and why.

Invariants: ``plan_proxy`` reads only its arguments (the explicit setting with where it came
from, ``trust_env``, and an environment *mapping* its caller hands in; ``kneo_client`` passes
``os.environ``) and never resolves a name. A proxy's password (and a user name standing alone,
which is then the credential) never appears in a ``repr``, a ``str`` or an error message:
messages name the proxy as ``scheme://host:port`` and where its setting came from.

The rules are the ones httpx, requests and curl users know:

- An explicit proxy (``proxy=``, the profile's ``proxy``, ``KNEO_PROXY``) carries every
  request; the environment's proxy variables, ``NO_PROXY`` included, are then not read (httpx's
  ``proxy=`` and requests' ``proxies=`` behave the same).
- Otherwise, unless ``trust_env`` is off, the target's scheme picks ``https_proxy`` or
  ``http_proxy``, else ``all_proxy``. A lower-case variable wins over its upper-case twin and an
  empty lower-case one unsets it (urllib's ``getproxies``, which requests and httpx use).
  ``HTTP_PROXY`` is ignored when ``REQUEST_METHOD`` is set: a CGI script's ``HTTP_*`` variables
  come from request headers (httpoxy, CVE-2016-5385); the lower-case ``http_proxy`` still counts.
- ``NO_PROXY`` (comma- or space-separated) bypasses the environment's proxy for ``*`` (every
  host); a host name and its subdomains, with or without a leading ``.`` or ``*.``; an IP
  address; a CIDR range (for a target given as an IP address: names are never resolved); each
  optionally with ``:port``. Case and a trailing dot are ignored.
- A proxy URL from the environment may omit its scheme (``proxy:3128`` is ``http://``, as curl
  and httpx read it); an explicit one may not. Schemes: ``http``, ``https`` (TLS to the proxy),
  ``socks5`` and ``socks5h``. Credentials come from the user info, percent-decoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from kneo_proto._actions import FailureKind
from kneo_proto._errors import KneoConfigurationError, KneoError, KneoProxyError
from kneo_proto._redact import REDACTED, redact_url

if TYPE_CHECKING:
    from ipaddress import IPv4Address, IPv6Address

__all__ = [
    "PROXY_SCHEMES",
    "Proxy",
    "ProxyPlan",
    "explain_proxy_refusal",
    "parse_proxy_url",
    "plan_proxy",
    "proxy_error",
]

PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_SEPARATORS = re.compile(r"[\s,]+")
# RFC 1929: a SOCKS5 user name and password are at most 255 bytes each.
_SOCKS_CREDENTIAL_BYTES = 255
# A refused CONNECT, as httpcore2 and httpx word it: "407 Proxy Authentication Required".
_REFUSAL_STATUS = re.compile(r"\s*(\d{3})\b")
# A proxy answering these about the target may do better on the next attempt (RFC 9110 15.6).
_TRANSIENT_PROXY_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class Proxy:
    """One proxy server, parsed from its URL.

    Attributes:
        scheme: ``http``, ``https`` (TLS to the proxy), ``socks5`` or ``socks5h``.
        host: Host name (lower-case) or IP address (without brackets).
        port: Port; the scheme's default (80, 443, 1080) when the URL names none.
        username: User name from the URL (percent-decoded), or None. Never shown.
        password: Password from the URL (percent-decoded), or None. Never shown.
        source: Where the setting came from, e.g. ``"HTTPS_PROXY"`` or ``"keyword proxy="``.
    """

    scheme: str
    host: str
    port: int
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    source: str = "keyword proxy="

    @property
    def url(self) -> str:
        """``scheme://host:port``, without credentials: how messages name the proxy."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def auth(self) -> tuple[str, str] | None:
        """(user name, password) for Basic or SOCKS5 authentication, or None."""
        if self.username is None and self.password is None:
            return None
        return (self.username or "", self.password or "")

    def __str__(self) -> str:
        return f"{self.url} (from {self.source})"

    def __repr__(self) -> str:
        shown = "" if self.auth is None else f", credentials={REDACTED}"
        return f"Proxy({self.url!r}, source={self.source!r}{shown})"


@dataclass(frozen=True, slots=True)
class ProxyPlan:
    """How a client reaches its platform: through ``proxy``, or directly.

    Attributes:
        proxy: The proxy every request goes through, or None for direct connections.
        reason: Where the proxy came from, or why there is none (e.g. ``"NO_PROXY entry
            '.internal'"``).
    """

    proxy: Proxy | None
    reason: str

    @property
    def direct(self) -> bool:
        """True when requests go to the platform directly."""
        return self.proxy is None

    def __str__(self) -> str:
        return f"direct ({self.reason})" if self.proxy is None else f"via proxy {self.proxy}"


def parse_proxy_url(
    url: object, source: str = "keyword proxy=", *, default_scheme: str | None = None
) -> Proxy:
    """Parse and check a proxy URL such as ``http://user:secret@proxy.example.com:3128``.

    Args:
        url: The URL.
        source: Where it came from; kept in the ``Proxy`` and named in error messages.
        default_scheme: The scheme assumed when ``url`` has none (``"http"`` for the
            environment's variables); None requires one.

    Raises:
        KneoConfigurationError: naming the problem, the proxy (password masked) and
            ``source``; never the password.
    """
    if not isinstance(url, str):
        raise KneoConfigurationError(
            f"proxy (from {source}) must be a URL string such as http://proxy.example.com:3128,"
            f" not {type(url).__name__}"
        )
    text = url.strip()
    if not text:
        raise KneoConfigurationError(
            f"proxy (from {source}) is empty: leave it unset to connect directly (and pass "
            "trust_env=False to ignore HTTPS_PROXY and the like)"
        )
    shown = f"proxy {redact_url(text)!r} (from {source})"
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise KneoConfigurationError(f"{shown} contains whitespace or a control character")
    if "://" not in text:
        if default_scheme is None:
            raise KneoConfigurationError(
                f"{shown} has no scheme: write http://host:port (or https://, socks5://, "
                "socks5h://)"
            )
        text = f"{default_scheme}://{text}"
    scheme = text.split("://", 1)[0].lower()
    _check_scheme(scheme, shown)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise KneoConfigurationError(
            f"{shown} is not a valid URL: check its host and its port (1-65535); a '/', '?', "
            "'#' or '@' in the password must be percent-encoded"
        ) from None
    host = parts.hostname or ""
    if not host:
        raise KneoConfigurationError(f"{shown} has no host")
    if not host.isascii():
        raise KneoConfigurationError(f"{shown} has a non-ASCII host: use its xn-- (IDNA) form")
    if port == 0:
        raise KneoConfigurationError(f"{shown} has port 0")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise KneoConfigurationError(f"{shown} must not have a path, a query or a fragment")
    username = None if parts.username is None else unquote(parts.username)
    password = None if parts.password is None else unquote(parts.password)
    if scheme.startswith("socks") and any(
        len(part.encode()) > _SOCKS_CREDENTIAL_BYTES for part in (username or "", password or "")
    ):
        raise KneoConfigurationError(
            f"{shown} has a user name or password over 255 bytes, which SOCKS5 cannot send"
        )
    return Proxy(scheme, host, port or _DEFAULT_PORTS[scheme], username, password, source)


def _check_scheme(scheme: str, shown: str) -> None:
    if not _SCHEME.fullmatch(scheme):
        raise KneoConfigurationError(f"{shown} is not a valid URL")
    if scheme not in PROXY_SCHEMES:
        socks4 = " (SOCKS4 is not supported)" if scheme.startswith("socks4") else ""
        raise KneoConfigurationError(
            f"{shown} has scheme {scheme!r}{socks4}: use http://, https://, socks5:// or socks5h://"
        )


def plan_proxy(
    url: str,
    *,
    proxy: str | None = None,
    source: str = "keyword proxy=",
    trust_env: bool = True,
    env: Mapping[str, str] | None = None,
) -> ProxyPlan:
    """Decide how requests to ``url`` travel: through which proxy, or directly, and why.

    Args:
        url: The target: the profile's base URL.
        proxy: The explicit proxy URL (a keyword, the profile's ``proxy``, ``KNEO_PROXY``),
            or None.
        source: Where ``proxy`` came from, for messages.
        trust_env: Whether the environment's proxy variables count (when ``proxy`` is None).
        env: The environment variables (the caller reads ``os.environ``).

    Raises:
        KneoConfigurationError: if the proxy URL that applies is not usable.
    """
    if proxy is not None:
        return ProxyPlan(parse_proxy_url(proxy, source), source)
    if not trust_env:
        return ProxyPlan(None, "trust_env is off: the proxy variables are not read")
    env = env or {}
    scheme, host, port = _target(url)
    found = _variable(env, f"{scheme}_proxy") or _variable(env, "all_proxy")
    if found is None:
        return ProxyPlan(None, f"neither {scheme}_proxy nor all_proxy is set, in either case")
    no_proxy = _variable(env, "no_proxy")
    if no_proxy is not None:
        entry = _bypassing_entry(no_proxy[1], host, port)
        if entry is not None:
            return ProxyPlan(None, f"{no_proxy[0]} entry {entry!r}")
    variable, value = found
    return ProxyPlan(parse_proxy_url(value, variable, default_scheme="http"), variable)


def _target(url: str) -> tuple[str, str, int]:
    """The target's scheme, host (lower-case, no trailing dot) and port."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise KneoConfigurationError("the target URL is not valid") from None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    return scheme, host, port or _DEFAULT_PORTS.get(scheme, 80)


def _variable(env: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(variable, value) of ``name`` in lower or upper case, or None when it is unset."""
    lower, upper = name.lower(), name.upper()
    if lower in env:
        value = env[lower].strip()
        return (lower, value) if value else None
    if upper == "HTTP_PROXY" and "REQUEST_METHOD" in env:
        return None  # httpoxy: under CGI, HTTP_PROXY may be a request's "Proxy:" header
    value = env.get(upper, "").strip()
    return (upper, value) if value else None


def _bypassing_entry(no_proxy: str, host: str, port: int) -> str | None:
    """The ``NO_PROXY`` entry that exempts ``host``:``port`` from the proxy, or None."""
    for entry in _SEPARATORS.split(no_proxy):
        if entry and _matches(entry, host.lower(), port):
            return entry
    return None


def _matches(entry: str, host: str, port: int) -> bool:
    if entry == "*":
        return True
    pattern, wanted_port = _split_port(entry.split("://", 1)[-1].rstrip("/").lower())
    if wanted_port is not None and wanted_port != port:
        return False
    pattern = pattern.rstrip(".")
    if "/" in pattern:
        return _in_network(host, pattern)
    address = _ip(pattern)
    if address is not None:
        return address == _ip(host)
    name = pattern.removeprefix("*").removeprefix(".")
    if not name or _ip(host) is not None:
        return False  # a name never matches an IP address: nothing is resolved
    return host == name or host.endswith("." + name)


def _split_port(text: str) -> tuple[str, int | None]:
    """``host[:port]``, ``[v6][:port]`` or a bare IPv6 address or range, split."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        digits = rest[1:] if rest.startswith(":") else ""
        return host, int(digits) if digits.isdigit() else None
    if text.count(":") == 1:
        host, _, digits = text.partition(":")
        if digits.isdigit():
            return host, int(digits)
    return text, None


def _ip(text: str) -> IPv4Address | IPv6Address | None:
    """``text`` as an IP address, or None for a name."""
    import ipaddress  # only here: slow to import, and most clients never need it

    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _in_network(host: str, cidr: str) -> bool:
    import ipaddress

    address = _ip(host)
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False  # not a range: an entry that matches nothing, as in requests
    return address is not None and address.version == network.version and address in network


# -- the errors a proxy causes ------------------------------------------------------------------


def proxy_error(
    proxy: Proxy | None,
    kind: FailureKind,
    detail: str,
    *,
    method: str,
    path: str,
    request_id: str,
    idempotency_key: str | None,
    attempts: int,
) -> tuple[KneoProxyError, bool]:
    """The error for a proxy that could not be reached (``kind`` ``CONNECT``) or refused the
    tunnel (``PROXY``), and whether another attempt may succeed.

    Nothing reached the platform in either case, so a retry is safe for every method; it can
    help only when the proxy was unreachable or answered 502, 503 or 504. ``proxy`` is None
    when it is not kneo-client's (a caller's httpx client).
    """
    named = "the proxy" if proxy is None else f"the proxy {proxy}"
    status = None
    if kind is not FailureKind.PROXY:
        what, retryable = f"could not connect to {named}: {detail}", True
    else:
        found = _REFUSAL_STATUS.match(detail)
        status = int(found.group(1)) if found else None
        what = f"{named} refused the tunnel: {detail}"
        if status == 407 or "username/password" in detail.lower():
            what += _credentials_hint(proxy)
        retryable = status in _TRANSIENT_PROXY_STATUSES
    error = KneoProxyError(
        f"{method} {path}: {what} (request_id={request_id})",
        kind=FailureKind.PROXY.value,
        request_id=request_id,
        idempotency_key=idempotency_key,
        method=method,
        path=path,
        attempts=attempts,
        proxy=None if proxy is None else proxy.url,
        proxy_source=None if proxy is None else proxy.source,
        proxy_status=status,
    )
    return error, retryable


def explain_proxy_refusal(error: KneoError, proxy: Proxy | None) -> None:
    """Name ``proxy`` in a 407 answered to a forwarded request, and say what to do."""
    if not isinstance(error, KneoProxyError):
        return
    error.kind = FailureKind.PROXY.value
    error.proxy_status = error.status
    if proxy is not None:
        error.proxy, error.proxy_source = proxy.url, proxy.source
    named = f": answered by the proxy{'' if proxy is None else f' {proxy}'}"
    said, marker, request_id = error.message.rpartition(" (request_id=")
    if not marker:
        said, request_id = error.message, ""
    error.message = said + named + _credentials_hint(proxy) + marker + request_id
    error.args = (error.message,)


def _credentials_hint(proxy: Proxy | None) -> str:
    if proxy is None or proxy.auth is not None:
        return "; check the user name and password in the proxy URL"
    return (
        f"; it wants credentials: put them in the proxy URL, as {proxy.scheme}://USER:PASSWORD@"
        f"{proxy.url.split('://', 1)[1]} (percent-encode '@', ':' and '/' in them)"
    )

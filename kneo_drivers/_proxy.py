"""Which httpcore2 pool class reaches the platform through the proxy ``kneo_proto.plan_proxy``
chose, and its proxy options. Nothing is decided here: the plan names the proxy.

- ``http://`` or ``https://`` proxy: ``HTTPProxy``. An ``http://`` target is forwarded (the
  request goes to the proxy in absolute form); an ``https://`` target is tunnelled with
  ``CONNECT``, and the target's TLS (the pool's ``ssl_context``: the profile's ``ca_bundle``,
  the caller's context, ``verify``) runs inside the tunnel exactly as without a proxy. TLS
  *to* an ``https://`` proxy uses httpcore2's default context (``SSL_CERT_FILE``,
  ``SSL_CERT_DIR``, else the system's trust store), as httpx does.
- ``socks5://`` or ``socks5h://``: ``SOCKSProxy`` (the ``socks`` extra, which installs
  socksio). httpcore2 sends the target's host *name* in the SOCKS request, so the proxy
  resolves it for ``socks5://`` as for ``socks5h://`` (curl and requests resolve locally for
  ``socks5://``): a host name only the proxy can resolve works with either.
- Credentials from the proxy URL, UTF-8 encoded: ``Proxy-Authorization: Basic`` for an HTTP
  proxy (httpcore2 puts it on each forwarded request and on the ``CONNECT``, never on a
  tunnelled request), the RFC 1929 user name and password for SOCKS5. httpcore2 logs its
  SOCKS handshake's arguments at DEBUG, credentials included: ``MaskSocksAuth`` on the
  ``httpcore2.socks`` logger masks them before any handler sees the record.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from typing import Any

from kneo_drivers._transport import httpcore
from kneo_proto import REDACTED, KneoConfigurationError, Proxy

__all__ = ["MaskSocksAuth", "pool_class"]

SOCKS_LOGGER = "httpcore2.socks"
_TIMEOUTS = re.compile(r"\{('\w+': [\w.+-]+(, )?)*\}")


def pool_class(proxy: Proxy | None, *, sync: bool) -> tuple[Any, dict[str, Any]]:
    """The pool class (blocking when ``sync``) for ``proxy`` (None: direct), and the keyword
    arguments naming the proxy.

    Raises:
        KneoConfigurationError: for a SOCKS proxy without the ``socks`` extra installed.
    """
    if proxy is None:
        return (httpcore.ConnectionPool if sync else httpcore.AsyncConnectionPool), {}
    options = {
        "proxy_url": httpcore.URL(
            scheme=proxy.scheme.encode("ascii"),
            host=proxy.host.encode("ascii"),
            port=proxy.port,
            target=b"/",
        ),
        "proxy_auth": None if proxy.auth is None else tuple(p.encode() for p in proxy.auth),
    }
    if not proxy.scheme.startswith("socks"):
        return (httpcore.HTTPProxy if sync else httpcore.AsyncHTTPProxy), options
    if importlib.util.find_spec("socksio") is None:
        raise KneoConfigurationError(
            f"the proxy {proxy} is a SOCKS proxy, which needs kneo-client's socks extra: "
            "pip install 'kneo-client[socks]'"
        )
    if proxy.auth is not None:
        _mask_socks_auth()
    return (httpcore.SOCKSProxy if sync else httpcore.AsyncSOCKSProxy), options


class MaskSocksAuth(logging.Filter):
    """Masks the ``auth=(user, password)`` httpcore2 writes into its SOCKS trace lines
    (``setup_socks5_connection.started ... auth=(b'user', b'password') timeouts={...}``).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and " auth=(" in record.msg:
            head, _, tail = record.msg.partition(" auth=(")
            # Keep only a trailing timeouts dict of numbers: anything else may be password.
            _, marker, rest = tail.rpartition(") timeouts=")
            kept = f" timeouts={rest}" if marker and _TIMEOUTS.fullmatch(rest) else ""
            record.msg = f"{head} auth={REDACTED}{kept}"
        return True


_MASK = MaskSocksAuth()


def _mask_socks_auth() -> None:
    logger = logging.getLogger(SOCKS_LOGGER)
    if _MASK not in logger.filters:
        logger.addFilter(_MASK)

"""Which certificates the pool a transport builds trusts: one choice from the caller's settings.

Invariants: verification is on unless ``verify=False`` is passed in code. It is never read
from a profile or the environment: a file or a variable that quietly switches verification
off for every program that reads it is the mistake this rules out (``allow_insecure_http``
is kept out of the environment for the same reason). Switching verification off while also
naming what to trust (``ca_bundle``, ``ssl_context``), or while handing over a client whose
TLS the caller configures (``http_client``, ``driver``), contradicts itself and is refused;
so is an ``ssl_context`` next to such a client (it would be ignored). Otherwise the most
specific setting wins: the caller's client (the profile's ``ca_bundle``, often set for a
whole environment, is then left to that client's own settings), then ``ssl_context``, then
the profile's ``ca_bundle``, then the transport library's default.
"""

from __future__ import annotations

import enum
from typing import Literal

from kneo_proto._errors import KneoConfigurationError

__all__ = ["Trust", "choose_trust"]


class Trust(enum.Enum):
    """What the pool a transport builds trusts."""

    CALLERS_CLIENT = "the caller's http_client or driver, as configured there"
    SSL_CONTEXT = "the caller's ssl_context"
    CA_BUNDLE = "the CA certificates in the profile's ca_bundle, and nothing else"
    DEFAULT = "the transport library's default (SSL_CERT_FILE, SSL_CERT_DIR, the system's)"
    NOTHING = "any certificate: verify=False"


_CLASHES = {
    "ca_bundle": (
        "verify=False cannot be combined with the profile's ca_bundle (from its TOML, "
        "KNEO_CA_BUNDLE or the keyword): to trust a private CA, keep verification on and "
        "name it in ca_bundle alone"
    ),
    "ssl_context": (
        "verify=False cannot be combined with ssl_context, which decides verification "
        "itself: pass one or the other"
    ),
    "http_client": (
        "verify=False applies to the pool kneo-client builds, not to an http_client: "
        "configure verification on that client (httpx: verify=...)"
    ),
    "driver": "verify=False applies to the pool kneo-client builds, not to a driver",
}
_IGNORED_CONTEXT = {
    "http_client": (
        "ssl_context applies to the pool kneo-client builds, not to an http_client: "
        "configure TLS on that client (httpx: verify=<your context>)"
    ),
    "driver": "ssl_context applies to the pool kneo-client builds, not to a driver",
}


def choose_trust(
    *,
    verify: bool,
    ca_bundle: str | None,
    ssl_context: bool,
    callers_client: Literal["http_client", "driver"] | None,
) -> Trust:
    """Return what the pool a transport builds trusts.

    Args:
        verify: The caller's ``verify`` keyword (True unless switched off in code).
        ca_bundle: The profile's ``ca_bundle`` path, or None.
        ssl_context: Whether the caller passed an ``ssl_context``.
        callers_client: ``"http_client"`` or ``"driver"`` when the caller supplied one
            (its own TLS settings apply), else None.

    Raises:
        KneoConfigurationError: if ``verify`` is not a bool, or is False together with
            ``ca_bundle``, ``ssl_context``, an ``http_client`` or a ``driver``, or if an
            ``ssl_context`` comes with an ``http_client`` or a ``driver``.
    """
    if not isinstance(verify, bool):
        # requests and httpx users pass a path or a context here; say where those go.
        raise KneoConfigurationError(
            f"verify must be True or False, not {type(verify).__name__}: name a CA file in "
            "the profile's ca_bundle, or pass your own ssl_context="
        )
    given = {
        "ca_bundle": ca_bundle is not None,
        "ssl_context": ssl_context,
        "http_client": callers_client == "http_client",
        "driver": callers_client == "driver",
    }
    if not verify:
        clash = next((name for name, present in given.items() if present), None)
        if clash is not None:
            raise KneoConfigurationError(_CLASHES[clash])
        return Trust.NOTHING
    if callers_client is not None:
        if ssl_context:
            raise KneoConfigurationError(_IGNORED_CONTEXT[callers_client])
        return Trust.CALLERS_CLIENT
    if ssl_context:
        return Trust.SSL_CONTEXT
    return Trust.DEFAULT if ca_bundle is None else Trust.CA_BUNDLE

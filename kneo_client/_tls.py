"""The TLS context of the pool a transport builds, from the caller's trust settings.

``kneo_proto``'s ``choose_trust`` decides what is trusted (and refuses contradictions); this
module builds that context, and says loudly when verification is off: one ``WARNING`` on
``kneo_client.transport`` per client, naming the origin, never the key. Logging, not
``warnings.warn``: it is emitted once per client rather than once per line of code, and
Python prints a warning record on stderr even when the program never configured logging.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kneo_proto import ClientConfig, Profile
from kneo_proto._trust import Trust, choose_trust

if TYPE_CHECKING:
    import ssl

__all__ = ["pool_tls_context"]


def pool_tls_context(
    config: ClientConfig,
    profile: Profile,
    ssl_context: ssl.SSLContext | None,
    *,
    verify: bool,
    http_client: object,
    driver: object,
) -> ssl.SSLContext | None:
    """Return the context for the pool the transport builds; None is the library's default
    (also returned when the caller's ``http_client`` or ``driver`` makes the connections).

    Raises:
        KneoConfigurationError: for contradictory settings (see ``choose_trust``), or a
            ``ca_bundle`` that cannot be loaded.
    """
    trust = choose_trust(
        verify=verify,
        ca_bundle=profile.ca_bundle,
        ssl_context=ssl_context is not None,
        callers_client=(
            "driver" if driver is not None else None if http_client is None else "http_client"
        ),
    )
    if trust is Trust.SSL_CONTEXT:
        return ssl_context
    if trust is Trust.CA_BUNDLE and profile.ca_bundle is not None:
        from kneo_drivers._transport import tls_context

        return tls_context(profile.ca_bundle)
    if trust is Trust.NOTHING:
        from kneo_drivers._transport import unverified_context

        _warn_unverified(config)
        return unverified_context()
    if trust is Trust.DEFAULT and config.origin.startswith("https:"):
        from kneo_drivers._transport import default_tls_context

        return default_tls_context()  # once per client, not once per connection
    return None  # plain http, or CALLERS_CLIENT (its own settings)


def _warn_unverified(config: ClientConfig) -> None:
    if not config.origin.startswith("https:"):
        return  # plain http has no certificate to verify; the plain-http guard applies
    import logging  # here, not at the top: most programs never need this warning

    logging.getLogger("kneo_client.transport").warning(
        "verify=False: TLS certificates and host names are not checked for %s, so anyone "
        "on the network path can pose as the platform and read the API key",
        config.origin,
    )

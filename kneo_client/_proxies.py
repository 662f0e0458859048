"""The proxy of the pool a transport builds, and the settings a caller's client cannot take.

The environment is read here for proxies, and only here: ``os.environ`` is handed to the pure
``kneo_proto.plan_proxy``, which decides. A ``proxy=`` or ``trust_env=`` keyword wins over the
profile's. One DEBUG line on ``kneo_client.proxy`` says which way a client goes and why
(the proxy's password masked); ``kneo_client.transport`` keeps its one line per attempt.

A caller's ``http_client`` makes its own connections, so a setting for the pool kneo-client
would build is refused rather than dropped: ``proxy=`` and ``max_connections=``, and the
profile's ``proxy`` too (dropping a proxy fails open: traffic meant for it would go straight
out). ``ssl_context`` and ``verify`` are ``kneo_proto/_trust.py``'s. A ``driver`` (a test
double, with no network) is left alone.
"""

from __future__ import annotations

import dataclasses
import os

from kneo_proto import ClientConfig, KneoConfigurationError, Profile, ProxyPlan, plan_proxy

__all__ = ["DEFAULT_MAX_CONNECTIONS", "plan_pool_proxy", "refuse_ignored_settings"]

DEFAULT_MAX_CONNECTIONS = 20
_KEYWORD = "keyword proxy="


def plan_pool_proxy(
    profile: Profile, config: ClientConfig, *, proxy: str | None, trust_env: bool | None
) -> tuple[ProxyPlan, ClientConfig]:
    """The proxy plan for the pool the transport builds, and ``config`` naming its proxy.

    Raises:
        KneoConfigurationError: for an unusable proxy URL (the keyword's, the profile's or an
            environment variable's; the message masks the password) or a ``trust_env`` that
            is not a bool.
        KneoInsecureTransportError: if the key would cross the network in clear to the proxy.
    """
    if trust_env is not None and not isinstance(trust_env, bool):
        raise KneoConfigurationError(
            f"trust_env must be True or False, not {type(trust_env).__name__}"
        )
    explicit, source = (
        (proxy, _KEYWORD) if proxy is not None else (profile.proxy, profile.proxy_source)
    )
    plan = plan_proxy(
        profile.url,
        proxy=explicit,
        source=source,
        trust_env=profile.trust_env if trust_env is None else trust_env,
        env=os.environ,
    )
    import logging  # here, not at the top: importing kneo_client must stay cheap

    logging.getLogger("kneo_client.proxy").debug("%s: %s", config.origin, plan)
    if plan.proxy is not None:
        config = dataclasses.replace(config, proxy=plan.proxy)
    return plan, config


def refuse_ignored_settings(
    profile: Profile,
    *,
    http_client: object,
    proxy: str | None,
    max_connections: int | None,
) -> None:
    """Raise if a setting for the pool kneo-client builds comes with a caller's client.

    Raises:
        KneoConfigurationError: naming each setting that would be ignored and what to do.
    """
    if http_client is None:
        return
    ignored = []
    if proxy is not None:
        ignored.append("proxy=")
    elif profile.proxy is not None:
        ignored.append(f"the profile's proxy (from {profile.proxy_source})")
    if max_connections is not None:
        ignored.append("max_connections=")
    if ignored:
        they = "it applies" if len(ignored) == 1 else "they apply"
        raise KneoConfigurationError(
            f"{' and '.join(ignored)} would be ignored: {they} to the pool kneo-client "
            "builds, not to your http_client. Leave http_client out and "
            "let kneo-client build the pool (with proxy=, the profile's ca_bundle, "
            "ssl_context and max_connections), or set them on your own client (httpx: "
            "proxy=..., limits=httpx.Limits(max_connections=...))"
        )

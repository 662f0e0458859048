"""What ``Transport`` and ``SyncTransport`` share: one constructor that turns a profile and the
caller's settings into a session (checks, warnings, proxy plan, TLS, driver, retry budget,
observers), and the properties and close bookkeeping built on it.

A colour adds only what it must (``kneo_client.core.transport``): the clients and driver it
takes (the type parameters), the drivers, budget and session it builds (the ``_httpx_driver``,
``_pool_driver`` and ``_session_for`` hooks), and ``request`` and closing as ``async def`` or
``def``. Drivers are imported when first built, so importing a transport loads none of them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypedDict, TypeVar

from kneo_client._proxies import DEFAULT_MAX_CONNECTIONS, plan_pool_proxy, refuse_ignored_settings
from kneo_client._session import AsyncSession, BlockingSession
from kneo_client._tls import pool_tls_context
from kneo_proto import (
    DEFAULT_KEEPALIVE_EXPIRY,
    DEFAULT_MAX_RESPONSE_BYTES,
    CallOptions,
    ClientConfig,
    KneoConfigurationError,
    Profile,
    ProxyPlan,
    RetryBudget,
    RetryPolicy,
    TokenBucket,
    check_keepalive_expiry,
)
from kneo_proto._events import Observer

if TYPE_CHECKING:
    import ssl

    from kneo_drivers.contract import AsyncExecutor, BlockingExecutor
    from kneo_proto._proxy import Proxy

__all__ = ["DEFAULT_RETRY_BUDGET", "PoolSettings", "TransportBase", "request_options"]

DEFAULT_RETRY_BUDGET = RetryBudget()

HttpClientT = TypeVar("HttpClientT")
DriverT = TypeVar("DriverT", "AsyncExecutor", "BlockingExecutor")
SessionT = TypeVar("SessionT", AsyncSession, BlockingSession)


class PoolSettings(TypedDict):
    """The settings of the pool a transport builds, as its pool driver takes them."""

    max_connections: int
    proxy: Proxy | None
    ssl_context: ssl.SSLContext | None
    keepalive_expiry: float | None


class TransportBase(Generic[HttpClientT, DriverT, SessionT]):
    """One platform instance's transport, of either colour: see ``__init__`` for what it takes.

    ``HttpClientT`` is the caller-owned client type the colour accepts, ``DriverT`` its
    driver protocol, ``SessionT`` the session its facades call through.
    """

    _blocking: ClassVar[bool]
    _driver: DriverT
    _session: SessionT

    def __init__(
        self,
        profile: Profile,
        *,
        http_client: HttpClientT | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int | None = None,
        proxy: str | None = None,
        trust_env: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: DriverT | None = None,
        observers: Iterable[Observer] = (),
        tracing: bool | None = None,
    ) -> None:
        """Bind the transport to ``profile``; nothing touches the network until a request.

        Args:
            profile: The resolved profile.
            http_client: A caller-owned client, which closing the transport leaves open:
                ``httpcore2.AsyncConnectionPool`` or ``httpx.AsyncClient`` for ``Transport``,
                ``httpcore2.ConnectionPool`` or ``httpx.Client`` for ``SyncTransport``. An
                httpx client's transport, proxies, limits, TLS settings, ``auth`` and event
                hooks apply; its ``base_url``, default headers, cookies and timeout do not
                (the profile's URL and timeout do), and redirects are never followed; with an
                ``httpx.Client`` the deadline is checked between body chunks, not inside every
                socket wait. httpx is imported only when such a client is passed.
            retry_policy: Defaults to ``RetryPolicy()`` (3 attempts, exponential backoff).
            retry_budget: The shared retry budget; None disables it.
            max_connections: Size of the pool this transport creates (20 by default); not
                with ``http_client``.
            proxy: The URL of the proxy its pool goes through (``http://``, ``https://``,
                ``socks5://``, ``socks5h://``; credentials in the user info), instead of the
                profile's; without either, ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
                ``NO_PROXY`` apply (ADR 0013). Not with ``http_client``.
            trust_env: False ignores those environment variables; None keeps the profile's
                setting (True by default).
            ssl_context: TLS settings for the pool this transport creates, instead of the
                default (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else the system's trust store)
                or the profile's ``ca_bundle``; not with ``http_client`` or ``driver``.
            verify: False accepts any certificate and host name (TLS-intercepting proxies);
                logs one warning. Not with ``ca_bundle``, ``ssl_context``, ``http_client`` or
                ``driver``.
            keepalive_expiry: Seconds an idle connection of the pool this transport creates
                is kept (5 by default; None keeps it as long as it lasts).
            max_response_bytes: The largest response body accepted (16 MiB by default).
            driver: A driver of the transport's colour to use instead, e.g. in tests
                ``AsyncMemoryDriver`` for ``Transport``, ``MemoryDriver`` for ``SyncTransport``.
            observers: Callables given every event of every call (``kneo_client.events``);
                one that raises is logged once and never breaks a call.
            tracing: False turns the OpenTelemetry spans and metric off; None keeps the
                profile's setting (on when ``opentelemetry-api`` is installed).

        Raises:
            KneoInsecureTransportError: if the key would go over plain http to a non-loopback
                host and the profile does not allow it.
            KneoConfigurationError: if ``http_client`` is not one of the clients above, the
                trust settings contradict each other, or ``ca_bundle`` cannot be loaded.
        """
        check_keepalive_expiry(keepalive_expiry)
        config = profile.client_config(retry_policy, max_response_bytes=max_response_bytes)
        refuse_ignored_settings(
            profile, http_client=http_client, proxy=proxy, max_connections=max_connections
        )
        plan = None
        if driver is None and http_client is None:
            plan, config = plan_pool_proxy(profile, config, proxy=proxy, trust_env=trust_env)
        _warn_if_key_in_clear(config)
        _warn_if_url_changed(config)
        ssl_context = pool_tls_context(
            config, profile, ssl_context, verify=verify, http_client=http_client, driver=driver
        )
        if driver is None and _client_library(http_client, self._blocking) == "httpx":
            driver = self._httpx_driver(http_client)
        elif driver is None:
            pool = PoolSettings(
                max_connections=max_connections or DEFAULT_MAX_CONNECTIONS,
                proxy=None if plan is None else plan.proxy,
                ssl_context=ssl_context,
                keepalive_expiry=keepalive_expiry,
            )
            driver = self._pool_driver(http_client, pool)
        self._profile = profile
        self._proxy_plan = plan
        self._driver = driver
        from kneo_client._observe import client_observers  # imports logging: not at the top

        options = CallOptions(observers=client_observers(profile, observers, tracing))
        self._session = self._session_for(config, retry_budget, options, driver)

    # -- what each colour builds ---------------------------------------------------------------

    def _httpx_driver(self, client: HttpClientT | None) -> DriverT:
        """The driver sending through the caller's httpx ``client``."""
        raise NotImplementedError

    def _pool_driver(self, pool: HttpClientT | None, settings: PoolSettings) -> DriverT:
        """The driver sending through the caller's httpcore ``pool``, or one it builds."""
        raise NotImplementedError

    def _session_for(
        self,
        config: ClientConfig,
        budget: RetryBudget | None,
        options: CallOptions,
        driver: DriverT,
    ) -> SessionT:
        """The session the transport's calls go through, with a bucket for ``budget``."""
        raise NotImplementedError

    # -- shared by both colours ------------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        """The profile this transport is bound to."""
        return self._profile

    @property
    def proxy_plan(self) -> ProxyPlan | None:
        """How the pool this transport built reaches the platform (through which proxy, or
        directly, and why); None when a caller's ``http_client`` or ``driver`` connects.
        """
        return self._proxy_plan

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The shared retry budget (``available`` tokens), or None when disabled."""
        return self._session.budget

    def _driver_closer(self, name: str) -> Callable[[], Any] | None:
        """Mark the transport closed; return the driver's ``name`` method to call, the first
        time only (closing is idempotent), and never for a driver without one.
        """
        if self._session.state.closed:
            return None
        self._session.state.closed = True
        closer: Callable[[], Any] | None = getattr(self._driver, name, None)
        return closer


def request_options(headers: Mapping[str, str] | None, request_id: str | None) -> CallOptions:
    """The per-call options of ``request``: its extra headers and ``X-Request-ID``."""
    return CallOptions(headers=dict(headers) if headers else None, request_id=request_id)


def _warn_if_key_in_clear(config: ClientConfig) -> None:
    """Log, once per client, that the API key will travel over plain http (opted into)."""
    if config.sends_key_in_clear:
        import logging  # here, not at the top: most programs never need this warning

        logging.getLogger("kneo_client.transport").warning(
            "allow_insecure_http is set: the API key will be sent unencrypted to %s",
            config.origin,
        )


def _warn_if_url_changed(config: ClientConfig) -> None:
    """Log, once per client, that the base URL given was changed (a trailing ``/v1``)."""
    if config.base_url_note is not None:
        import logging  # here, not at the top: most programs never need this warning

        logging.getLogger("kneo_client.transport").warning("%s", config.base_url_note)


# The caller-owned clients each colour takes, as (module, class).
_ASYNC_CLIENTS = (("httpcore2", "AsyncConnectionPool"), ("httpx", "AsyncClient"))
_SYNC_CLIENTS = (("httpcore2", "ConnectionPool"), ("httpx", "Client"))


def _is_instance(obj: object, module: str, name: str) -> bool:
    # Without importing ``module``: an instance of one of its classes implies it is loaded.
    loaded = sys.modules.get(module)
    return loaded is not None and isinstance(obj, getattr(loaded, name))


def _client_library(http_client: object, sync: bool) -> str:
    """Which library's client ``http_client`` is: ``"httpcore2"`` (None: the transport's own
    pool) or ``"httpx"``, for a blocking (``sync``) or an async transport.

    Raises:
        KneoConfigurationError: for anything else, naming what is accepted.
    """
    if http_client is None:
        return "httpcore2"
    accepted, other = (_SYNC_CLIENTS, _ASYNC_CLIENTS) if sync else (_ASYNC_CLIENTS, _SYNC_CLIENTS)
    for module, name in accepted:
        if _is_instance(http_client, module, name):
            return module
    this, that = ("SyncTransport", "Transport") if sync else ("Transport", "SyncTransport")
    takes = f"{this}(http_client=...) takes " + " or ".join(f"{m}.{n}" for m, n in accepted)
    for module, name in other:
        if _is_instance(http_client, module, name):
            raise KneoConfigurationError(f"{takes}, not {module}.{name}: pass it to {that}")
    kind = type(http_client)
    raise KneoConfigurationError(f"{takes}, not {kind.__module__}.{kind.__qualname__}")

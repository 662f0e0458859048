"""``Transport`` and ``SyncTransport``: the request engine behind the clients, and the
escape hatch for endpoints kneo-client does not wrap yet.

``request(method, path, ...)`` goes through the same retry, idempotency, request-ID and
error machinery as every wrapped endpoint and returns a ``TransportResponse`` (status below
300); failures raise ``KneoError`` subclasses.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

import msgspec

from kneo_client._proxies import DEFAULT_MAX_CONNECTIONS, plan_pool_proxy, refuse_ignored_settings
from kneo_client._session import AsyncExecutor, AsyncSession, BlockingExecutor, BlockingSession
from kneo_client._tls import pool_tls_context
from kneo_proto import (
    DEFAULT_KEEPALIVE_EXPIRY,
    DEFAULT_MAX_RESPONSE_BYTES,
    CallOptions,
    ClientConfig,
    Finished,
    KneoConfigurationError,
    KneoDecodeError,
    Profile,
    ProxyPlan,
    RetryBudget,
    RetryPolicy,
    TokenBucket,
    check_keepalive_expiry,
)
from kneo_proto._operation import raw_operation

if TYPE_CHECKING:
    import ssl

    import httpx

    from kneo_drivers._transport import httpcore

__all__ = ["DEFAULT_RETRY_BUDGET", "SyncTransport", "Transport", "TransportResponse"]

DEFAULT_RETRY_BUDGET = RetryBudget()


class TransportResponse:
    """A successful response from ``Transport.request``.

    Attributes:
        status_code: The HTTP status.
        headers: The response headers (names as received; use ``header`` for lookups).
        content: The raw body.
        request_id: The ``X-Request-ID`` the platform returned, else the one sent.
        sent_request_id: The ``X-Request-ID`` kneo-client sent.
        idempotency_key: The ``Idempotency-Key`` sent (POST only).
        attempts: Attempts the call took.
    """

    __slots__ = (
        "_response",
        "attempts",
        "content",
        "headers",
        "idempotency_key",
        "request_id",
        "sent_request_id",
        "status_code",
    )

    def __init__(self, finished: Finished[bytes]) -> None:
        self.status_code = finished.response.status
        self.headers = dict(finished.response.headers)
        self.content = finished.result
        self.request_id = finished.request_id
        self.sent_request_id = finished.sent_request_id
        self.idempotency_key = finished.idempotency_key
        self.attempts = finished.attempts
        self._response = finished.response

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or None."""
        return self._response.header(name)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            KneoDecodeError: if the body is not JSON.
        """
        try:
            return msgspec.json.decode(self.content)
        except msgspec.DecodeError as exc:
            raise KneoDecodeError(
                f"response body is not JSON: {exc}",
                status=self.status_code,
                request_id=self.request_id,
                idempotency_key=self.idempotency_key,
            ) from None

    def __repr__(self) -> str:
        return f"<TransportResponse {self.status_code} request_id={self.request_id}>"


def _warn_if_key_in_clear(config: ClientConfig) -> None:
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


def _request_options(headers: Mapping[str, str] | None, request_id: str | None) -> CallOptions:
    return CallOptions(headers=dict(headers) if headers else None, request_id=request_id)


# The caller-owned clients each transport takes, as (module, class).
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


class Transport:
    """Async HTTP transport for one platform instance.

    Args:
        profile: The resolved profile.
        http_client: A caller-owned ``httpcore2.AsyncConnectionPool`` or ``httpx.AsyncClient``;
            ``aclose`` leaves it open. An httpx client's transport, proxies, limits, TLS
            settings, ``auth`` and event hooks apply; its ``base_url``, default headers,
            cookies and timeout do not (the profile's URL and timeout do), and redirects are
            never followed. httpx is imported only when such a client is passed.
        retry_policy: Defaults to ``RetryPolicy()`` (3 attempts, exponential backoff).
        retry_budget: The shared retry budget; None disables it.
        max_connections: Size of the pool this transport creates (20 by default); not with
            ``http_client``.
        proxy: The URL of the proxy its pool goes through (``http://``, ``https://``,
            ``socks5://``, ``socks5h://``; credentials in the user info), instead of the
            profile's; without either, ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
            ``NO_PROXY`` apply (ADR 0013). Not with ``http_client``.
        trust_env: False ignores those environment variables; None keeps the profile's
            setting (True by default).
        ssl_context: TLS settings for the pool this transport creates, instead of the
            default (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else the system's trust store) or
            the profile's ``ca_bundle``; not with ``http_client`` or ``driver``.
        verify: False accepts any certificate and host name (TLS-intercepting proxies);
            logs one warning. Not with ``ca_bundle``, ``ssl_context``, ``http_client`` or
            ``driver``.
        keepalive_expiry: Seconds an idle connection of the pool this transport creates is
            kept (5 by default; None keeps it as long as it lasts).
        max_response_bytes: The largest response body accepted (16 MiB by default).
        driver: An async driver to use instead (e.g. ``AsyncMemoryDriver`` in tests).

    Raises:
        KneoInsecureTransportError: if the key would go over plain http to a non-loopback
            host and the profile does not allow it.
        KneoConfigurationError: if ``http_client`` is not one of the clients above, the
            trust settings contradict each other, or ``ca_bundle`` cannot be loaded.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        http_client: httpcore.AsyncConnectionPool | httpx.AsyncClient | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int | None = None,
        proxy: str | None = None,
        trust_env: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: AsyncExecutor | None = None,
    ) -> None:
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
        if driver is None and _client_library(http_client, sync=False) == "httpx":
            from kneo_drivers.httpx import HttpxAsyncDriver

            driver = HttpxAsyncDriver(cast("httpx.AsyncClient", http_client))
        elif driver is None:
            from kneo_drivers.anyio import AsyncDriver

            driver = AsyncDriver(
                pool=cast("httpcore.AsyncConnectionPool | None", http_client),
                max_connections=max_connections or DEFAULT_MAX_CONNECTIONS,
                proxy=None if plan is None else plan.proxy,
                ssl_context=ssl_context,
                keepalive_expiry=keepalive_expiry,
            )
        budget = None if retry_budget is None else TokenBucket(retry_budget)
        self._profile = profile
        self._proxy_plan = plan
        self._driver = driver
        self._session = AsyncSession(config, budget, driver=driver)

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

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> TransportResponse:
        """Send a request with auth, retries, idempotency and error mapping.

        Args:
            method: HTTP method (GET, POST, ...).
            path: Path relative to the base URL, e.g. ``/v1/runs``.
            json: JSON body.
            params: Query parameters.
            headers: Extra headers; auth, ``Idempotency-Key`` and ``X-Request-ID`` win.
            idempotency_key: Key for a POST (auto-generated when None); ignored otherwise.
            request_id: ``X-Request-ID`` to send instead of a generated one.

        Returns:
            TransportResponse: the successful response.

        Raises:
            KneoError: a subclass, once retries are exhausted or not allowed.
        """
        operation = raw_operation(
            method, path, json=json, params=params, idempotency_key=idempotency_key
        )
        session = self._session.with_options(_request_options(headers, request_id))
        return TransportResponse(await session.execute(operation))

    async def aclose(self) -> None:
        """Close the connection pool unless the caller owns it. Idempotent."""
        if self._session.state.closed:
            return
        self._session.state.closed = True
        close = getattr(self._driver, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class SyncTransport:
    """Blocking HTTP transport for one platform instance; safe to share between threads.

    It runs on httpcore's sync pool and never touches an event loop, so it works in
    notebooks and inside worker threads of async programs.

    Args:
        profile: The resolved profile.
        http_client: A caller-owned ``httpcore2.ConnectionPool`` or ``httpx.Client``;
            ``close`` leaves it open. An httpx client is used as by ``Transport``; the
            deadline is then checked between body chunks, not inside every socket wait.
        retry_policy: Defaults to ``RetryPolicy()``.
        retry_budget: The shared retry budget; None disables it.
        max_connections: Size of the pool this transport creates (20 by default); not with
            ``http_client``.
        proxy: The URL of the proxy its pool goes through (``http://``, ``https://``,
            ``socks5://``, ``socks5h://``; credentials in the user info), instead of the
            profile's; without either, ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and
            ``NO_PROXY`` apply (ADR 0013). Not with ``http_client``.
        trust_env: False ignores those environment variables; None keeps the profile's
            setting (True by default).
        ssl_context: TLS settings for the pool this transport creates, instead of the
            default (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else the system's trust store) or
            the profile's ``ca_bundle``; not with ``http_client`` or ``driver``.
        verify: False accepts any certificate and host name (TLS-intercepting proxies);
            logs one warning. Not with ``ca_bundle``, ``ssl_context``, ``http_client`` or
            ``driver``.
        keepalive_expiry: Seconds an idle connection of the pool this transport creates is
            kept (5 by default; None keeps it as long as it lasts).
        max_response_bytes: The largest response body accepted (16 MiB by default).
        driver: A blocking driver to use instead (e.g. ``MemoryDriver`` in tests).

    Raises:
        KneoInsecureTransportError: as for ``Transport``.
        KneoConfigurationError: if ``http_client`` is not one of the clients above, the
            trust settings contradict each other, or ``ca_bundle`` cannot be loaded.
    """

    def __init__(
        self,
        profile: Profile,
        *,
        http_client: httpcore.ConnectionPool | httpx.Client | None = None,
        retry_policy: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int | None = None,
        proxy: str | None = None,
        trust_env: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: BlockingExecutor | None = None,
    ) -> None:
        from kneo_drivers.blocking import LockedTokenBucket

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
        if driver is None and _client_library(http_client, sync=True) == "httpx":
            from kneo_drivers.httpx import HttpxBlockingDriver

            driver = HttpxBlockingDriver(cast("httpx.Client", http_client))
        elif driver is None:
            from kneo_drivers.blocking import BlockingDriver

            driver = BlockingDriver(
                pool=cast("httpcore.ConnectionPool | None", http_client),
                max_connections=max_connections or DEFAULT_MAX_CONNECTIONS,
                proxy=None if plan is None else plan.proxy,
                ssl_context=ssl_context,
                keepalive_expiry=keepalive_expiry,
            )
        budget = None if retry_budget is None else LockedTokenBucket(retry_budget)
        self._profile = profile
        self._proxy_plan = plan
        self._driver = driver
        self._session = BlockingSession(config, budget, driver=driver)

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

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        request_id: str | None = None,
    ) -> TransportResponse:
        """Blocking version of ``Transport.request``: same arguments, same semantics."""
        operation = raw_operation(
            method, path, json=json, params=params, idempotency_key=idempotency_key
        )
        session = self._session.with_options(_request_options(headers, request_id))
        return TransportResponse(session.execute(operation))

    def close(self) -> None:
        """Close the connection pool unless the caller owns it. Idempotent."""
        if self._session.state.closed:
            return
        self._session.state.closed = True
        close = getattr(self._driver, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> SyncTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

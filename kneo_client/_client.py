"""``KneoClient`` (async) and ``SyncKneoClient`` (blocking): the public entry points.

Each owns one transport and mounts ``.platform`` and ``.agent`` on it. Both mount the same
namespace tables, so every endpoint is served to async and blocking users alike. Everything
the two share lives in ``_ClientBase``; each adds only its transport, its mode and its
``aclose`` or ``close``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Self, TypeVar

from kneo_client._bind import AsyncMode, BlockingMode, M
from kneo_client._closing import AsyncClosing, BlockingClosing
from kneo_client._session import AsyncSession, BlockingSession
from kneo_client._transport_base import DEFAULT_RETRY_BUDGET
from kneo_client.agent import AgentClient
from kneo_client.core.profiles import load_profile
from kneo_client.core.transport import SyncTransport, Transport
from kneo_client.platform import PlatformClient
from kneo_proto import (
    DEFAULT_KEEPALIVE_EXPIRY,
    DEFAULT_MAX_RESPONSE_BYTES,
    AuthScheme,
    CallOptions,
    KneoConfigurationError,
    Observer,
    Profile,
    RetryBudget,
    RetryPolicy,
    TokenBucket,
)
from kneo_proto._profiles import PROFILE_FIELDS

if TYPE_CHECKING:
    import ssl
    from pathlib import Path

    # Named in the quoted class bases of KneoClient and SyncKneoClient.
    import httpx  # noqa: F401

    from kneo_drivers._transport import httpcore  # noqa: F401

__all__ = ["KneoClient", "SyncKneoClient"]

# What goes to load_profile when no Profile is given: its file, and every profile field.
_PROFILE_KEYS = frozenset({"config_file", *PROFILE_FIELDS})
# The profile fields a client built on a given Profile still takes: the transport's own
# (proxy, trust_env, tracing) and strict_responses. The others live in the Profile only.
_ON_A_PROFILE = frozenset({"proxy", "trust_env", "tracing", "strict_responses"})

TransportT = TypeVar("TransportT", Transport, SyncTransport)
HttpClientT = TypeVar("HttpClientT")
P = ParamSpec("P")
R = TypeVar("R")


def _suggesting(method: Callable[P, R]) -> Callable[P, R]:
    """Make an unknown keyword of ``method`` a ``TypeError`` naming the closest accepted one."""
    code = method.__code__
    accepted = code.co_varnames[1 : code.co_argcount + code.co_kwonlyargcount]

    @functools.wraps(method)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R:
        for key in kwargs:
            if key not in accepted:
                raise TypeError(_unexpected(args[0], method.__name__, key, accepted))
        return method(*args, **kwargs)

    return checked


def _unexpected(owner: object, method: str, key: str, accepted: Iterable[str]) -> str:
    import difflib  # here, not at the top: only a mistyped keyword needs it

    cls = owner if isinstance(owner, type) else type(owner)
    call = f"{cls.__name__}()" if method == "__init__" else f"{cls.__name__}.{method}()"
    message = f"{call} got an unexpected keyword argument {key!r}"
    close = difflib.get_close_matches(key, list(accepted), n=1)
    return f"{message}; did you mean {close[0]!r}?" if close else message


def _split_overrides(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    profile = {k: v for k, v in options.items() if k in _PROFILE_KEYS}
    client = {k: v for k, v in options.items() if k not in _PROFILE_KEYS}
    return profile, client


def _on_profile(cls: type, profile: object, options: dict[str, Any]) -> dict[str, Any]:
    """Check a given ``profile`` and return the ``options`` meant for its client.

    Raises:
        TypeError: if ``profile`` is not a ``Profile`` (a URL, say), or a setting that only
            a profile carries (``url``, ``api_key``, ...) is given with one.
    """
    name = cls.__name__
    if not isinstance(profile, Profile):
        raise TypeError(
            f"{name}() takes a Profile as its only positional argument, not a "
            f"{type(profile).__name__}: pass {name}(url=..., api_key=...), or a Profile "
            f"(load_profile(...)), or use {name}.from_profile(...)"
        )
    clashing = sorted(k for k in _PROFILE_KEYS - _ON_A_PROFILE if options[k] is not None)
    if clashing:
        raise TypeError(
            f"{name}(profile, {clashing[0]}=...): {', '.join(clashing)} belong to the profile; "
            f"set them on the Profile, or give them without one: {name}({clashing[0]}=...)"
        )
    return {k: v for k, v in options.items() if k not in _PROFILE_KEYS - _ON_A_PROFILE}


def _retry_policy(max_retries: int | None, retry_policy: RetryPolicy | None) -> RetryPolicy | None:
    """``retry_policy``, or the policy ``max_retries`` stands for (one attempt more).

    Raises:
        KneoConfigurationError: if both are given, or ``max_retries`` is not an int >= 0.
    """
    if max_retries is None:
        return retry_policy
    if retry_policy is not None:
        raise KneoConfigurationError(
            "give max_retries or retry_policy, not both: max_retries=n is "
            "retry_policy=RetryPolicy(max_attempts=n + 1)"
        )
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise KneoConfigurationError(f"max_retries must be an int >= 0, not {max_retries!r}")
    return RetryPolicy(max_attempts=max_retries + 1)


def _with_strictness(profile: Profile, strict_responses: bool | None) -> Profile:
    if strict_responses is None or strict_responses == profile.strict_responses:
        return profile
    return dataclasses.replace(profile, strict_responses=strict_responses)


def _options(
    timeout: float | None,
    deadline: float | None,
    retry_policy: RetryPolicy | None,
    headers: Mapping[str, str] | None,
    request_id: str | None,
    observers: Iterable[Observer] | None,
) -> CallOptions:
    if observers is not None:
        from kneo_client._observe import checked_observers  # imports logging: not at the top

        observers = checked_observers(observers)
    return CallOptions(
        timeout=timeout,
        deadline=deadline,
        retry_policy=retry_policy,
        headers=dict(headers) if headers else None,
        request_id=request_id,
        observers=None if observers is None else tuple(observers),
    )


class _ClientBase(Generic[TransportT, M, HttpClientT]):
    """A client of either colour: ``TransportT`` is its transport, ``M`` the mode its
    namespaces are bound in (``AsyncMode``: awaitables; ``BlockingMode``: results),
    ``HttpClientT`` the ``http_client`` its transport takes. ``driver`` and ``observers``
    are typed loosely (code that picks the client class at run time passes either colour's
    driver); the transport checks both when it is built.
    """

    _transport_class: type[TransportT]
    _transport: TransportT
    _session: AsyncSession | BlockingSession
    profile: Profile
    platform: PlatformClient[M]
    agent: AgentClient[M]

    @_suggesting
    def __init__(
        self,
        profile: Profile | None = None,
        *,
        config_file: Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        auth_scheme: AuthScheme | str | None = None,
        timeout: float | None = None,
        allow_insecure_http: bool | None = None,
        ca_bundle: str | None = None,
        strict_responses: bool | None = None,
        proxy: str | None = None,
        trust_env: bool | None = None,
        log: str | None = None,
        tracing: bool | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        http_client: HttpClientT | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: Any = None,
        observers: Iterable[Observer] = (),
    ) -> None:
        """Build the client and its transport; nothing touches the network until a call.

        ``KneoClient(profile)`` binds a resolved ``Profile``. Without one, the profile is
        resolved as ``from_profile()`` does (``load_profile``: the config file, then
        ``KNEO_URL``, ``KNEO_API_KEY`` and the other ``KNEO_*`` variables, then the keywords
        given here), so ``KneoClient(url=..., api_key=...)`` works, and so does
        ``KneoClient()`` when the environment names the platform. An unknown keyword is a
        ``TypeError`` naming the closest accepted one.

        Args:
            profile: A resolved profile (URL, API key, scheme, timeout, ...).
            config_file: Without a profile: the TOML file ``load_profile`` reads.
            url: Without a profile: the platform's base URL.
            api_key: Without a profile: the API key.
            auth_scheme: Without a profile: how the key is sent.
            timeout: Without a profile: seconds for each phase of each attempt.
            allow_insecure_http: Without a profile: allow the key over plain http.
            ca_bundle: Without a profile: a PEM file of CA certificates to trust.
            strict_responses: Validate every response against ``spec/`` in full (True) or
                tolerantly (False); None keeps the profile's setting.
            proxy: The URL of the proxy to go through (the transport's ``proxy``).
            trust_env: False ignores ``HTTPS_PROXY`` and the like; None keeps the profile's.
            log: Without a profile: the level of kneo-client's log records on stderr.
            tracing: False turns the OpenTelemetry spans and metric off; None keeps the
                profile's setting.
            max_retries: Retries after the first attempt: ``RetryPolicy(max_attempts=n + 1)``.
            retry_policy: Override the default retry policy (3 attempts, exponential backoff).
            http_client: A caller-owned client; the transport's ``__init__`` says which.
            retry_budget: The shared retry budget; None disables it.
            max_connections: Size of the pool the transport creates (20 by default).
            ssl_context: TLS settings for the pool the transport creates.
            verify: False accepts any certificate and host name (logs one warning).
            keepalive_expiry: Seconds an idle pooled connection is kept (5 by default).
            max_response_bytes: The largest response body accepted (16 MiB by default).
            driver: A driver of the client's colour to use instead (e.g. in tests).
            observers: Callables given every event of every call.

        The transport's ``__init__`` (``Transport`` or ``SyncTransport``) describes its
        keywords in full.

        Raises:
            TypeError: if ``profile`` is not a ``Profile``, or a setting only a profile
                carries (``url``, ``api_key``, ...) is given with one.
            KneoConfigurationError: if ``max_retries`` and ``retry_policy`` are both given,
                or the transport's settings are not usable.
            ProfileError: without a profile, if the URL or API key cannot be resolved.
        """
        # Every keyword, by name: the lists are checked against the profile's fields and the
        # transport's keywords by tests/client/test_first_hour.py.
        options = {k: v for k, v in locals().items() if k not in ("self", "profile")}
        if profile is None:
            profile_options, options = _split_overrides(options)
            profile = load_profile(None, **profile_options)
        else:
            options = _on_profile(type(self), profile, options)
            profile = _with_strictness(profile, options.pop("strict_responses"))
        policy = _retry_policy(options.pop("max_retries"), options.pop("retry_policy"))
        self.profile = profile
        self._transport = self._transport_class(profile, retry_policy=policy, **options)
        self._mount(self._transport._session)

    def _mount(self, session: AsyncSession | BlockingSession) -> None:
        self._session = session  # what with_options derives from: this client's options
        self.platform = PlatformClient(session)
        self.agent = AgentClient(session)

    @classmethod
    @_suggesting
    def from_profile(
        cls,
        name: str | None = None,
        *,
        config_file: Path | None = None,
        url: str | None = None,
        api_key: str | None = None,
        auth_scheme: AuthScheme | str | None = None,
        timeout: float | None = None,
        allow_insecure_http: bool | None = None,
        ca_bundle: str | None = None,
        strict_responses: bool | None = None,
        proxy: str | None = None,
        trust_env: bool | None = None,
        log: str | None = None,
        tracing: bool | None = None,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        http_client: HttpClientT | None = None,
        retry_budget: RetryBudget | None = DEFAULT_RETRY_BUDGET,
        max_connections: int | None = None,
        ssl_context: ssl.SSLContext | None = None,
        verify: bool = True,
        keepalive_expiry: float | None = DEFAULT_KEEPALIVE_EXPIRY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        driver: Any = None,
        observers: Iterable[Observer] = (),
    ) -> Self:
        """Resolve a profile with ``load_profile`` and build a client.

        ``name`` is the profile's name (else ``$KNEO_PROFILE``, else ``"default"``);
        ``config_file`` and the profile fields (``url``, ``api_key``, ``auth_scheme``,
        ``timeout``, ``allow_insecure_http``, ``ca_bundle``, ``strict_responses``, ``proxy``,
        ``trust_env``, ``log``, ``tracing``) go to ``load_profile``; the other keywords to
        the constructor, whose ``__init__`` describes each. An unknown keyword is a
        ``TypeError`` naming the closest accepted one.
        """
        options = {k: v for k, v in locals().items() if k not in ("cls", "name")}
        profile_options, client_options = _split_overrides(options)
        return cls(load_profile(name, **profile_options), **client_options)

    def with_options(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        retry_policy: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        observers: Iterable[Observer] | None = None,
    ) -> Self:
        """Return a client sharing this one's connections, with per-call overrides.

        Args:
            timeout: Seconds for each phase of each attempt.
            deadline: Seconds each whole call may take, retries and sleeps included.
            retry_policy: The retry policy for its calls.
            headers: Extra headers for its calls.
            request_id: The ``X-Request-ID`` for its calls.
            observers: The observers of its calls, instead of this client's (``observers``
                and the OpenTelemetry observer ``tracing`` added); ``()`` for none. None keeps
                this client's.
        """
        options = _options(timeout, deadline, retry_policy, headers, request_id, observers)
        clone = copy.copy(self)
        clone._mount(self._session.with_options(options))
        return clone

    @property
    def retry_budget(self) -> TokenBucket | None:
        """The client's shared retry budget, or None when disabled."""
        return self._transport.retry_budget

    def __repr__(self) -> str:
        return f"<{type(self).__name__} profile={self.profile.name!r} url={self.profile.url!r}>"


class KneoClient(
    _ClientBase[
        Transport,
        AsyncMode,
        "httpcore.AsyncConnectionPool | httpx.AsyncClient",
    ],
    AsyncClosing,
):
    """Async client for a Kneo Agent Platform instance (asyncio or trio).

    Build it from a ``Profile`` (``KneoClient(profile)``), from keywords resolved like
    ``from_profile()`` (``KneoClient(url=..., api_key=...)``, with the config file and the
    ``KNEO_*`` variables filling in the rest; ``__init__`` describes each keyword), or with
    ``KneoClient.from_profile()``; ``async with`` closes it on exit.

    Attributes:
        platform: Operational surface: runs, traces, audit, credentials, policies, health.
        agent: Development surface: spec validate, compile, explain, policy_report, run.
        profile: The resolved profile this client is bound to.

    The transport is built eagerly; nothing touches the network until the first call.
    """

    _transport_class = Transport

    async def aclose(self) -> None:
        """Close the underlying transport. Idempotent."""
        await self._transport.aclose()


class SyncKneoClient(
    _ClientBase[SyncTransport, BlockingMode, "httpcore.ConnectionPool | httpx.Client"],
    BlockingClosing,
):
    """Blocking client for a Kneo Agent Platform instance; safe to share between threads.

    The same ``.platform``, ``.agent`` and ``.profile`` as ``KneoClient``, and the same
    constructor, without ``await``. It never touches an event loop; ``with`` closes it on exit.
    """

    _transport_class = SyncTransport

    def close(self) -> None:
        """Close the underlying transport. Idempotent."""
        self._transport.close()

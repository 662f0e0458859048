"""Profiles: what one platform instance needs (URL, key, auth scheme, timeout, trusted CA),
resolved purely from TOML text, an environment mapping and keyword overrides.

Invariants: later sources win (TOML, then ``KNEO_*`` variables, then keywords). A profile's
key is validated when the profile is built; ``repr`` and every error message hide it.
Reading the file and ``os.environ`` is the caller's job (``kneo_client.core.profiles``); a
CA bundle is carried as a path string and only read when a transport builds its TLS context.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kneo_proto._auth import AuthScheme, normalize_api_key
from kneo_proto._config import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    ClientConfig,
    parse_base_url,
)
from kneo_proto._errors import KneoConfigurationError, ProfileError
from kneo_proto._origins import locate, missing_profile, origins_of, stray_keys
from kneo_proto._proxy import parse_proxy_url
from kneo_proto._redact import redact_url
from kneo_proto._retry import RetryPolicy

__all__ = [
    "DEFAULT_PROFILE_NAME",
    "DEFAULT_TIMEOUT_SECONDS",
    "ENV_API_KEY",
    "ENV_AUTH_SCHEME",
    "ENV_CA_BUNDLE",
    "ENV_PROFILE",
    "ENV_PROXY",
    "ENV_STRICT_RESPONSES",
    "ENV_TIMEOUT",
    "ENV_TRUST_ENV",
    "ENV_LOG",
    "ENV_TRACING",
    "ENV_URL",
    "PROFILE_FIELDS",
    "Profile",
    "resolve_profile",
]

DEFAULT_PROFILE_NAME = "default"
ENV_PROFILE = "KNEO_PROFILE"
ENV_URL = "KNEO_URL"
ENV_API_KEY = "KNEO_API_KEY"
ENV_AUTH_SCHEME = "KNEO_AUTH_SCHEME"
ENV_TIMEOUT = "KNEO_TIMEOUT"
ENV_CA_BUNDLE = "KNEO_CA_BUNDLE"
ENV_STRICT_RESPONSES = "KNEO_STRICT_RESPONSES"
ENV_PROXY = "KNEO_PROXY"
ENV_TRUST_ENV = "KNEO_TRUST_ENV"
ENV_LOG = "KNEO_LOG"
ENV_TRACING = "KNEO_TRACING"
LOG_LEVELS = ("debug", "info", "warning", "error", "off")

_DECIMAL = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|nan|inf|infinity)", re.I)
PROFILE_FIELDS = (
    "url",
    "api_key",
    "auth_scheme",
    "timeout",
    "allow_insecure_http",
    "ca_bundle",
    "strict_responses",
    "proxy",
    "trust_env",
    "log",
    "tracing",
)
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_ENV_FIELDS = {
    "url": ENV_URL,
    "api_key": ENV_API_KEY,
    "auth_scheme": ENV_AUTH_SCHEME,
    "timeout": ENV_TIMEOUT,
    "ca_bundle": ENV_CA_BUNDLE,
    "strict_responses": ENV_STRICT_RESPONSES,
    "proxy": ENV_PROXY,
    "trust_env": ENV_TRUST_ENV,
    "log": ENV_LOG,
    "tracing": ENV_TRACING,
}


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything needed to talk to one Kneo Agent Platform instance.

    Attributes:
        name: Profile name; informational, used in log records.
        url: Base URL of the platform instance.
        api_key: The API key (surrounding whitespace removed). Never shown by ``repr``.
        auth_scheme: How the key is presented (``Authorization: Bearer`` or
            ``X-Kneo-Api-Key``).
        timeout: Per-request timeout in seconds.
        allow_insecure_http: Allow the key over plain http to a non-loopback host (for a
            TLS-terminating proxy on a private network).
        ca_bundle: Path to a PEM file of CA certificates to trust for https instead of the
            system's trust store (a private CA), or None for the system's.
        strict_responses: Validate every response against ``spec/`` in full instead of the
            tolerant default (ADR 0011): for CI and tests against a conforming platform.
        proxy: The URL of the proxy every request goes through (``http://``, ``https://``,
            ``socks5://``, ``socks5h://``, credentials in its user info), or None; ``repr``
            masks its password. Without one, ``HTTPS_PROXY`` and the like apply (ADR 0013).
        trust_env: Whether ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY`` and ``NO_PROXY``
            count when no ``proxy`` is set.
        log: ``"debug"``, ``"info"``, ``"warning"``, ``"error"`` or ``"off"``: a client of
            this profile writes kneo-client's log records at that level and above to stderr
            (a handler on the ``kneo_client`` logger only, never the root one); None leaves
            logging to the application.
        tracing: Whether a client makes OpenTelemetry spans and metrics (when
            ``opentelemetry-api`` is installed).
        proxy_source: Where ``proxy`` came from, for messages (``resolve_profile`` fills it
            in; ``profile '<name>'`` otherwise).

    Raises:
        ProfileError: if a field is not usable; the message never contains the key.
    """

    name: str
    url: str
    api_key: str = field(repr=False)
    auth_scheme: AuthScheme = AuthScheme.BEARER
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    allow_insecure_http: bool = False
    ca_bundle: str | None = None
    strict_responses: bool = False
    proxy: str | None = None
    trust_env: bool = True
    log: str | None = None
    tracing: bool = True
    proxy_source: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        setting = "url"
        try:
            parse_base_url(self.url)
            setting = "api_key"
            key = normalize_api_key(self.api_key)
        except KneoConfigurationError as exc:
            raise ProfileError(f"profile {self.name!r}: {exc}", setting=setting) from None
        object.__setattr__(self, "api_key", key)
        object.__setattr__(self, "auth_scheme", _auth_scheme(self.name, self.auth_scheme))
        object.__setattr__(self, "timeout", _timeout(self.name, self.timeout))
        _check_ca_bundle(self.name, self.ca_bundle)
        object.__setattr__(
            self, "strict_responses", _flag(self.name, "strict_responses", self.strict_responses)
        )
        object.__setattr__(self, "trust_env", _flag(self.name, "trust_env", self.trust_env))
        object.__setattr__(self, "tracing", _flag(self.name, "tracing", self.tracing))
        object.__setattr__(self, "log", _log_level(self.name, self.log))
        if not self.proxy_source:
            object.__setattr__(self, "proxy_source", f"profile {self.name!r}")
        _check_proxy(self.name, self.proxy, self.proxy_source)

    def __repr__(self) -> str:
        shown = "" if self.ca_bundle is None else f", ca_bundle={self.ca_bundle!r}"
        if self.strict_responses:
            shown += ", strict_responses=True"
        if self.proxy is not None:
            shown += f", proxy={redact_url(self.proxy)!r}"
        if not self.trust_env:
            shown += ", trust_env=False"
        if self.log is not None:
            shown += f", log={self.log!r}"
        if not self.tracing:
            shown += ", tracing=False"
        return (
            f"Profile(name={self.name!r}, url={self.url!r}, api_key=<redacted>, "
            f"auth_scheme={self.auth_scheme.value!r}, timeout={self.timeout!r}{shown})"
        )

    def client_config(
        self,
        retry_policy: RetryPolicy | None = None,
        *,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> ClientConfig:
        """Return the ``ClientConfig`` for this profile.

        Args:
            retry_policy: The client's default retry policy.
            max_response_bytes: The largest response body the client accepts.

        Raises:
            KneoInsecureTransportError: if the key would go over plain http to a
                non-loopback host and ``allow_insecure_http`` is not set.
        """
        return ClientConfig(
            base_url=self.url,
            api_key=self.api_key,
            auth_scheme=self.auth_scheme,
            timeout=self.timeout,
            retry_policy=retry_policy or RetryPolicy(),
            allow_insecure_http=self.allow_insecure_http,
            max_response_bytes=max_response_bytes,
            strict_responses=self.strict_responses,
        )


def _auth_scheme(profile: str, value: object) -> AuthScheme:
    if isinstance(value, AuthScheme):
        return value
    known = {scheme.value: scheme for scheme in AuthScheme}
    scheme = known.get(str(value).lower())
    if scheme is None:
        # Raised outside any except block: the rejected value may be a misplaced key, so
        # it must not survive as the error's __context__.
        choices = ", ".join(repr(s) for s in known)
        raise ProfileError(
            f"profile {profile!r}: auth_scheme must be one of {choices}", setting="auth_scheme"
        )
    return scheme


def _timeout(profile: str, value: object) -> float:
    seconds = _as_float(value)
    if seconds is None:
        raise ProfileError(
            f"profile {profile!r}: timeout must be a number of seconds", setting="timeout"
        )
    if isinstance(value, bool) or not (math.isfinite(seconds) and seconds > 0):
        raise ProfileError(
            f"profile {profile!r}: timeout must be a finite number > 0", setting="timeout"
        )
    return seconds


def _check_ca_bundle(profile: str, value: object) -> None:
    # Only the path is checked here (pure); the transport reads the file when it builds its
    # TLS context, and reports a missing or unusable file then.
    if value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise ProfileError(
            f"profile {profile!r}: ca_bundle must be the path of a PEM file", setting="ca_bundle"
        )
    if not value.isprintable():
        raise ProfileError(
            f"profile {profile!r}: ca_bundle contains a control character", setting="ca_bundle"
        )


def _check_proxy(profile: str, value: object, source: str) -> None:
    if value is None:
        return
    try:
        parse_proxy_url(value, source)
    except KneoConfigurationError as exc:
        raise ProfileError(f"profile {profile!r}: {exc}") from None  # the message masks it


def _flag(profile: str, field: str, value: object) -> bool:
    """A yes/no setting from a keyword or TOML (a bool) or the environment (its text)."""
    if isinstance(value, bool):
        return value
    text = value.strip().lower() if isinstance(value, str) else None
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise ProfileError(
        f"profile {profile!r}: {field} must be true or false (the environment also takes "
        f"1/0, yes/no, on/off), not {value!r}",
        setting=field,
    )


def _log_level(profile: str, value: object) -> str | None:
    """``log`` lower-cased, or None when unset (an empty variable counts as unset)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    level = value.strip().lower() if isinstance(value, str) else None
    if level not in LOG_LEVELS:
        raise ProfileError(
            f"profile {profile!r}: log must be one of {', '.join(LOG_LEVELS)}, not {value!r}",
            setting="log",
        )
    return level


def _as_float(value: object) -> float | None:
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
        return float(value)
    return None


def _toml_section(name: str, toml_text: str | None, source: str, explicit: bool) -> dict[str, Any]:
    if toml_text is None:
        return {}
    import tomllib  # only here: a profile given in code never needs the TOML parser

    try:
        data = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source} is not valid TOML: {exc}") from None
    section = data.get(name)
    if section is not None and not isinstance(section, dict):
        raise ProfileError(f"[{name}] in {source} must be a table")
    stray = stray_keys(data, name, source)
    if stray is not None:
        raise stray
    if section is None:
        if explicit:
            known = ", ".join(sorted(data)) or "none"
            raise ProfileError(f"profile {name!r} not found in {source} (profiles: {known})")
        return {}
    unknown = sorted(set(section) - set(PROFILE_FIELDS))
    if unknown:
        raise ProfileError(
            f"[{name}] in {source} has unknown keys {unknown}; allowed: {list(PROFILE_FIELDS)}"
        )
    return section


def resolve_profile(
    name: str | None = None,
    *,
    toml_text: str | None = None,
    env: Mapping[str, str] | None = None,
    source: str = "the config file",
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
) -> Profile:
    """Resolve a ``Profile`` from TOML text, environment variables and keyword overrides.

    Later sources override earlier ones: the TOML section, then ``KNEO_URL``,
    ``KNEO_API_KEY``, ``KNEO_AUTH_SCHEME``, ``KNEO_TIMEOUT``, ``KNEO_CA_BUNDLE``,
    ``KNEO_STRICT_RESPONSES``, ``KNEO_PROXY``, ``KNEO_TRUST_ENV``, ``KNEO_LOG``,
    ``KNEO_TRACING``, then the keywords. The name falls back to ``KNEO_PROFILE``, then
    ``"default"``. Empty variables count as unset.

    Args:
        name: Profile (TOML section) name.
        toml_text: The config file's text, or None when there is no file.
        env: The environment variables.
        source: How to name the config file in error messages.
        url: Overrides the URL.
        api_key: Overrides the key.
        auth_scheme: Overrides the scheme (enum or its string value).
        timeout: Overrides the timeout.
        allow_insecure_http: Overrides the plain-http opt-in.
        ca_bundle: Overrides the path of the PEM file of CA certificates to trust.
        strict_responses: Overrides full validation of responses against ``spec/``.
        proxy: Overrides the proxy URL.
        trust_env: Overrides whether the environment's proxy variables count.
        log: Overrides the level of kneo-client's stderr log (``"off"`` for none).
        tracing: Overrides whether clients make OpenTelemetry spans and metrics.

    Raises:
        ProfileError: if the URL or key cannot be resolved from any source, the TOML is
            malformed, a named profile is missing from it, or a value is not usable.
    """
    env = env or {}
    explicit = bool(name or env.get(ENV_PROFILE))
    if explicit and toml_text is None:
        # A name asked for must exist; with no file, a typo would silently build a profile
        # from the environment. Only an unnamed profile may come from KNEO_* and keywords.
        raise missing_profile(name or env[ENV_PROFILE], source, from_env=not name)
    name = name or env.get(ENV_PROFILE) or DEFAULT_PROFILE_NAME
    section = _toml_section(name, toml_text, source, explicit)
    from_env = {f: env[var] for f, var in _ENV_FIELDS.items() if env.get(var)}
    overrides = {
        "url": url,
        "api_key": api_key,
        "auth_scheme": auth_scheme,
        "timeout": timeout,
        "allow_insecure_http": allow_insecure_http,
        "ca_bundle": ca_bundle,
        "strict_responses": strict_responses,
        "proxy": proxy,
        "trust_env": trust_env,
        "log": log,
        "tracing": tracing,
    }
    from_keywords = {k: v for k, v in overrides.items() if v is not None}
    values: dict[str, Any] = {**section, **from_env, **from_keywords}
    origins = origins_of(
        section=section,
        from_env=from_env,
        from_keywords=from_keywords,
        env_names=_ENV_FIELDS,
        name=name,
        source=source,
    )
    for required, var in (("url", ENV_URL), ("api_key", ENV_API_KEY)):
        if not values.get(required):
            raise ProfileError(
                f"no {required} for profile {name!r}: set {required} in [{name}] of {source}, "
                f"set {var}, or pass {required}="
            )
        if not isinstance(values[required], str):
            wrong = ProfileError(f"profile {name!r}: {required} must be a string", setting=required)
            raise locate(wrong, values, origins)
    insecure = values.get("allow_insecure_http", False)
    if not isinstance(insecure, bool):
        wrong = ProfileError(
            f"profile {name!r}: allow_insecure_http must be true or false",
            setting="allow_insecure_http",
        )
        raise locate(wrong, values, origins)
    try:
        return Profile(
            name=name,
            url=values["url"],
            api_key=values["api_key"],
            auth_scheme=values.get("auth_scheme", AuthScheme.BEARER),
            timeout=values.get("timeout", DEFAULT_TIMEOUT_SECONDS),
            allow_insecure_http=insecure,
            ca_bundle=values.get("ca_bundle"),
            strict_responses=values.get("strict_responses", False),
            proxy=values.get("proxy"),
            trust_env=values.get("trust_env", True),
            log=values.get("log"),
            tracing=values.get("tracing", True),
            proxy_source=(
                "keyword proxy="
                if proxy is not None
                else ENV_PROXY
                if env.get(ENV_PROXY)
                else f"[{name}] in {source}"
            ),
        )
    except ProfileError as exc:  # say where the bad value came from
        failed = exc
    # Raised outside the except block: the rejected value must not ride along as context.
    raise locate(failed, values, origins)

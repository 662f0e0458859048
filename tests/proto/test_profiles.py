"""Profiles, API keys and the plain-http guard (contract: Profile & profiles, ApiKeyAuth;
plan T33, T38 and section 4.3)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest

from kneo_proto import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT_SECONDS,
    ApiKeyAuth,
    AuthScheme,
    ClientConfig,
    KneoConfigurationError,
    KneoInsecureTransportError,
    KneoUsageError,
    Profile,
    ProfileError,
    RetryPolicy,
    is_loopback_host,
    normalize_api_key,
    resolve_profile,
)
from kneo_proto._config import USER_AGENT, parse_base_url

# A fresh secret per run (plan 3.1, canary secrets): 48 characters, never to be shown.
CANARY = "kneo_canary_" + secrets.token_hex(18)
URL = "https://kneo.example.com"

CONTRACT_TOML = """\
# ~/.config/kneo/client.toml
[default]
url = "https://kneo.example.com"
api_key = "prod-key"
auth_scheme = "bearer"
timeout = 30.0

[staging]
url = "https://staging-kneo.example.com"
api_key = "staging-key"
"""


def toml(section: str = "default", **fields: Any) -> str:
    """A one-section config file; strings are quoted, everything else written as TOML."""
    lines = [f"[{section}]"]
    for name, value in fields.items():
        shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
        lines.append(f"{name} = {shown}")
    return "\n".join(lines) + "\n"


def test_profile_tables_are_not_empty() -> None:
    assert len(CANARY) == 48
    for table in (
        PRECEDENCE_CASES,
        SELECTION_CASES,
        PROFILE_ERROR_CASES,
        KEY_CASES,
        GUARD_CASES,
        LOOPBACK_CASES,
        BASE_URL_ERRORS,
        CONFIG_ERRORS,
    ):
        assert table


# -- resolution order: TOML < environment < keywords -----------------------------------------


@dataclass(frozen=True)
class Sources:
    toml: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)


FULL_TOML = toml(
    url="https://toml.example.com",
    api_key="toml-key",
    auth_scheme="bearer",
    timeout=11.0,
    allow_insecure_http=True,
)
FULL_ENV = {
    "KNEO_URL": "https://env.example.com",
    "KNEO_API_KEY": "env-key",
    "KNEO_AUTH_SCHEME": "kneo_api_key",
    "KNEO_TIMEOUT": "22",
}
FULL_KWARGS: dict[str, Any] = {
    "url": "https://kwarg.example.com",
    "api_key": "kwarg-key",
    "auth_scheme": AuthScheme.BEARER,
    "timeout": 33.0,
    "allow_insecure_http": False,
}

# sources -> (url, api_key, auth_scheme, timeout, allow_insecure_http)
PRECEDENCE_CASES: list[tuple[Sources, tuple[str, str, AuthScheme, float, bool]]] = [
    (
        Sources(toml=FULL_TOML),
        ("https://toml.example.com", "toml-key", AuthScheme.BEARER, 11.0, True),
    ),
    (
        Sources(toml=FULL_TOML, env=FULL_ENV),
        ("https://env.example.com", "env-key", AuthScheme.KNEO_API_KEY, 22.0, True),
    ),
    (
        Sources(toml=FULL_TOML, env=FULL_ENV, kwargs=FULL_KWARGS),
        ("https://kwarg.example.com", "kwarg-key", AuthScheme.BEARER, 33.0, False),
    ),
    (
        Sources(env=FULL_ENV),
        ("https://env.example.com", "env-key", AuthScheme.KNEO_API_KEY, 22.0, False),
    ),
    (
        Sources(kwargs={"url": URL, "api_key": "k"}),
        (URL, "k", AuthScheme.BEARER, DEFAULT_TIMEOUT_SECONDS, False),
    ),
    (
        Sources(toml=FULL_TOML, env={"KNEO_URL": "", "KNEO_API_KEY": "", "KNEO_TIMEOUT": ""}),
        ("https://toml.example.com", "toml-key", AuthScheme.BEARER, 11.0, True),
    ),
    (
        Sources(toml=FULL_TOML, env={"KNEO_TIMEOUT": "5"}, kwargs={"api_key": "kw"}),
        ("https://toml.example.com", "kw", AuthScheme.BEARER, 5.0, True),
    ),
    (
        Sources(
            env={**FULL_ENV, "KNEO_AUTH_SCHEME": "BEARER"}, kwargs={"auth_scheme": "KNEO_API_KEY"}
        ),
        ("https://env.example.com", "env-key", AuthScheme.KNEO_API_KEY, 22.0, False),
    ),
    (
        Sources(kwargs={"url": URL, "api_key": "  padded-key\n", "timeout": 1}),
        (URL, "padded-key", AuthScheme.BEARER, 1.0, False),
    ),
]


@pytest.mark.parametrize(("sources", "expected"), PRECEDENCE_CASES)
def test_resolve_profile_lets_env_override_toml_and_keywords_override_both(
    sources: Sources, expected: tuple[str, str, AuthScheme, float, bool]
) -> None:
    profile = resolve_profile(toml_text=sources.toml, env=sources.env, **sources.kwargs)
    got = (
        profile.url,
        profile.api_key,
        profile.auth_scheme,
        profile.timeout,
        profile.allow_insecure_http,
    )
    assert got == expected
    assert profile.name == "default"
    assert type(profile.timeout) is float
    assert type(profile.auth_scheme) is AuthScheme


TWO_PROFILES = CONTRACT_TOML + toml("other", url="https://other.example.com", api_key="other-key")

# (name argument, KNEO_PROFILE) -> (resolved name, url)
SELECTION_CASES: list[tuple[str | None, str | None, str, str]] = [
    (None, None, "default", "https://kneo.example.com"),
    ("staging", None, "staging", "https://staging-kneo.example.com"),
    (None, "staging", "staging", "https://staging-kneo.example.com"),
    ("other", "staging", "other", "https://other.example.com"),
    ("", "other", "other", "https://other.example.com"),
    (None, "", "default", "https://kneo.example.com"),
]


@pytest.mark.parametrize(("name", "env_profile", "resolved", "url"), SELECTION_CASES)
def test_resolve_profile_picks_the_section_by_name_then_kneo_profile_then_default(
    name: str | None, env_profile: str | None, resolved: str, url: str
) -> None:
    env = {} if env_profile is None else {"KNEO_PROFILE": env_profile}
    profile = resolve_profile(name, toml_text=TWO_PROFILES, env=env)
    assert (profile.name, profile.url) == (resolved, url)


def test_resolve_profile_without_a_file_refuses_a_name_it_cannot_find() -> None:
    """A name asked for must exist: without a file, KNEO_PROFILE=ci (or a typo such as
    "stagin") no longer builds a profile from the environment under that name."""
    env = {"KNEO_PROFILE": "ci", "KNEO_URL": URL, "KNEO_API_KEY": CANARY}
    with pytest.raises(ProfileError, match=r"profile 'ci' \(named by KNEO_PROFILE\) not found"):
        resolve_profile(toml_text=None, env=env)
    unnamed = resolve_profile(toml_text=None, env={"KNEO_URL": URL, "KNEO_API_KEY": CANARY})
    assert (unnamed.name, unnamed.url, unnamed.api_key) == ("default", URL, CANARY)


def test_resolve_profile_reads_the_contract_toml_example() -> None:
    default = resolve_profile(toml_text=CONTRACT_TOML)
    assert default == Profile(
        name="default",
        url="https://kneo.example.com",
        api_key="prod-key",
        auth_scheme=AuthScheme.BEARER,
        timeout=30.0,
    )
    staging = resolve_profile("staging", toml_text=CONTRACT_TOML, env={})
    assert (staging.url, staging.api_key) == ("https://staging-kneo.example.com", "staging-key")
    assert (staging.auth_scheme, staging.timeout) == (AuthScheme.BEARER, DEFAULT_TIMEOUT_SECONDS)


def test_resolve_profile_skips_an_absent_default_section() -> None:
    profile = resolve_profile(toml_text=toml("other", url=URL), url=URL, api_key=CANARY)
    assert profile.url == URL


# -- every ProfileError, none of them showing the key ----------------------------------------

GOOD = {"url": URL, "api_key": CANARY}

# (name, toml, env, kwargs, a fragment of the message)
PROFILE_ERROR_CASES: list[tuple[str | None, str | None, dict[str, str], dict[str, Any], str]] = [
    (None, None, {}, {"api_key": CANARY}, "no url for profile 'default'"),
    (None, toml(api_key=CANARY), {}, {}, "set KNEO_URL, or pass url="),
    (None, toml(url=URL), {}, {}, "no api_key for profile 'default'"),
    (None, None, {"KNEO_URL": URL}, {}, "set KNEO_API_KEY"),
    (None, f'[default]\napi_key = "{CANARY}', {}, {}, "not valid TOML"),
    (None, f"[default]\napi_key = {CANARY}\n", {}, {}, "not valid TOML"),
    (None, f'[default\napi_key = "{CANARY}"\n', {}, {}, "not valid TOML"),
    (None, toml(api_key=CANARY, url=URL, colour="blue"), {}, {}, "unknown keys ['colour']"),
    (None, toml(api_key=CANARY, url=URL, auth_scheme="basic"), {}, {}, "auth_scheme must be"),
    (None, None, {"KNEO_AUTH_SCHEME": "oauth"}, GOOD, "auth_scheme must be one of"),
    (None, None, {}, {**GOOD, "auth_scheme": "token"}, "'bearer', 'kneo_api_key'"),
    (None, toml(api_key=CANARY, url=URL, auth_scheme=7), {}, {}, "auth_scheme must be"),
    (None, toml(api_key=CANARY, url=URL, timeout="soon"), {}, {}, "number of seconds"),
    (None, None, {"KNEO_TIMEOUT": "abc"}, GOOD, "timeout must be a number"),
    (None, toml(api_key=CANARY, url=URL, timeout=0), {}, {}, "finite number > 0"),
    (None, None, {"KNEO_TIMEOUT": "-1"}, GOOD, "finite number > 0"),
    (None, None, {"KNEO_TIMEOUT": "nan"}, GOOD, "finite number > 0"),
    (None, None, {"KNEO_TIMEOUT": "inf"}, GOOD, "finite number > 0"),
    (None, None, {}, {**GOOD, "timeout": -0.5}, "finite number > 0"),
    (None, toml(api_key=CANARY, url=URL, timeout=True), {}, {}, "finite number > 0"),
    (None, toml(api_key=CANARY, url=URL, timeout="[1]"), {}, {}, "number of seconds"),
    ("nope", CONTRACT_TOML, {}, GOOD, "profile 'nope' not found in the config file"),
    (None, CONTRACT_TOML, {"KNEO_PROFILE": "gone"}, GOOD, "(profiles: default, staging)"),
    ("nope", "", {}, GOOD, "(profiles: none)"),
    (None, 'default = "https://kneo.example.com"\n', {}, GOOD, "[default] in the config"),
    (None, toml(api_key=CANARY, url=5), {}, {}, "url must be a string"),
    (None, toml(api_key=5, url=URL), {}, {}, "api_key must be a string"),
    (None, toml(api_key=CANARY, url=URL, allow_insecure_http="yes"), {}, {}, "true or false"),
    (None, None, {}, {**GOOD, "url": "ftp://kneo.example.com"}, "absolute http:// or https://"),
    (None, None, {}, {**GOOD, "url": "kneo.example.com"}, "absolute http:// or https://"),
    (None, None, {}, {**GOOD, "url": f"https://u:{CANARY}@kneo.invalid"}, "user info"),
    (None, None, {}, {**GOOD, "url": "https://kneo.example.com:port"}, "not valid"),
    (None, None, {}, {"url": URL, "api_key": CANARY + " x"}, "whitespace or a control"),
    (None, None, {}, {"url": URL, "api_key": CANARY + "\x00"}, "whitespace or a control"),
    (None, None, {}, {"url": URL, "api_key": CANARY + "é"}, "non-ASCII"),
    (None, None, {"KNEO_API_KEY": " \n"}, {"url": URL}, "API key is empty"),
]


@pytest.mark.parametrize(("name", "text", "env", "kwargs", "fragment"), PROFILE_ERROR_CASES)
def test_resolve_profile_raises_profile_error_without_showing_the_key(
    name: str | None, text: str | None, env: dict[str, str], kwargs: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        resolve_profile(name, toml_text=text, env=env, **kwargs)
    error = caught.value
    assert fragment in str(error)
    assert isinstance(error, KneoConfigurationError)
    assert isinstance(error, ValueError)
    for shown in (str(error), repr(error), *map(str, error.args)):
        assert CANARY not in shown
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_resolve_profile_names_the_source_in_messages() -> None:
    with pytest.raises(ProfileError, match=r"~/.kneo.toml is not valid TOML"):
        resolve_profile(toml_text="[[", source="~/.kneo.toml")


# -- the API key: stripped, then visible ASCII only (T33), for both schemes -----------------

# raw key -> the key sent, or None when refused (with the message fragment)
KEY_CASES: list[tuple[str, str, str | None, str]] = [
    ("trailing LF", CANARY + "\n", CANARY, ""),
    ("trailing CRLF", CANARY + "\r\n", CANARY, ""),
    ("surrounding spaces and tabs", " \t" + CANARY + "\t ", CANARY, ""),
    ("10 KiB", CANARY * 214, CANARY * 214, ""),
    ("punctuation", "k!#$%&'*+-.^_`|~=/", "k!#$%&'*+-.^_`|~=/", ""),
    ("inner space", CANARY[:20] + " " + CANARY[20:], None, "whitespace or a control character"),
    ("inner NUL", CANARY[:20] + "\x00" + CANARY[20:], None, "whitespace or a control character"),
    ("inner TAB", CANARY[:20] + "\t" + CANARY[20:], None, "whitespace or a control character"),
    ("inner LF", CANARY[:20] + "\n" + CANARY[20:], None, "whitespace or a control character"),
    ("DEL", CANARY + "\x7f", None, "whitespace or a control character"),
    ("vertical tab", "\x0b" + CANARY, None, "whitespace or a control character"),
    ("U+2028", CANARY + "\u2028", None, "non-ASCII"),
    ("non-ASCII", "ключ-" + CANARY, None, "non-ASCII"),
    ("no-break space", "\u00a0" + CANARY, None, "non-ASCII"),
    ("empty", "", None, "API key is empty"),
    ("only whitespace", " \r\n\t", None, "API key is empty"),
]


@pytest.mark.parametrize(("label", "raw", "sent", "fragment"), KEY_CASES)
@pytest.mark.parametrize("scheme", list(AuthScheme))
def test_api_key_is_stripped_or_refused_without_being_shown(
    label: str, raw: str, sent: str | None, fragment: str, scheme: AuthScheme
) -> None:
    builders = (
        lambda: normalize_api_key(raw),
        lambda: ApiKeyAuth(raw, scheme),
        lambda: Profile(name="p", url=URL, api_key=raw, auth_scheme=scheme),
        lambda: ClientConfig(base_url=URL, api_key=raw, auth_scheme=scheme),
    )
    if sent is None:
        for build in builders:
            with pytest.raises(KneoConfigurationError, match=fragment) as caught:
                build()
            assert CANARY not in str(caught.value), label
            assert CANARY not in repr(caught.value), label
        return
    assert normalize_api_key(raw) == sent
    auth = ApiKeyAuth(raw, scheme)
    expected = ("Authorization", f"Bearer {sent}")
    if scheme is AuthScheme.KNEO_API_KEY:
        expected = ("X-Kneo-Api-Key", sent)
    assert auth.header() == expected
    profile = Profile(name="p", url=URL, api_key=raw, auth_scheme=scheme)
    assert profile.api_key == sent
    config = profile.client_config()
    assert config.auth is not None
    assert config.auth.header() == expected


@pytest.mark.parametrize("key", [None, b"bytes-key", 12345])
def test_api_key_must_be_a_string(key: Any) -> None:
    with pytest.raises(KneoConfigurationError, match="API key must be a string"):
        normalize_api_key(key)
    with pytest.raises(ProfileError, match="API key must be a string"):
        Profile(name="p", url=URL, api_key=key)


def test_profile_and_auth_repr_never_show_the_key() -> None:
    profile = Profile(name="prod", url=URL, api_key=CANARY, timeout=5)
    assert repr(profile) == (
        "Profile(name='prod', url='https://kneo.example.com', api_key=<redacted>, "
        "auth_scheme='bearer', timeout=5.0)"
    )
    assert CANARY not in str(profile)
    auth = ApiKeyAuth(CANARY, AuthScheme.KNEO_API_KEY)
    assert repr(auth) == "ApiKeyAuth(api_key=<redacted>, scheme='kneo_api_key')"
    config = profile.client_config()
    assert CANARY not in repr(config)
    assert CANARY not in repr(resolve_profile(url=URL, api_key=CANARY))


def test_auth_scheme_values_are_the_contracts() -> None:
    assert [(s.name, s.value, str(s)) for s in AuthScheme] == [
        ("BEARER", "bearer", "bearer"),
        ("KNEO_API_KEY", "kneo_api_key", "kneo_api_key"),
    ]


@dataclass
class HttpxStyleRequest:
    headers: dict[str, str] = field(default_factory=dict)


@pytest.mark.parametrize(
    ("scheme", "name", "value"),
    [
        ("bearer", "Authorization", f"Bearer {CANARY}"),
        (AuthScheme.KNEO_API_KEY, "X-Kneo-Api-Key", CANARY),
    ],
)
def test_api_key_auth_sets_its_header_on_httpx_style_requests(
    scheme: AuthScheme, name: str, value: str
) -> None:
    auth = ApiKeyAuth(CANARY, scheme)
    request = HttpxStyleRequest()
    assert auth(request) is request
    assert request.headers == {name: value}
    flow = auth.auth_flow(HttpxStyleRequest())
    sent = next(flow)
    assert sent.headers == {name: value}
    with pytest.raises(StopIteration):
        next(flow)


# -- Profile.client_config and the plain-http guard (T38) ------------------------------------

LOOPBACK_URLS = [
    "http://127.0.0.1:8080",
    "http://127.5.5.5:8080",
    "http://[::1]:8080",
    "http://localhost:8080",
    "http://LOCALHOST:8080/",
    "http://api.localhost:8080",
]
LOOK_ALIKES = [
    "http://api.kneo.invalid",
    "http://localhost.invalid",
    "http://127.0.0.1.invalid",
    "http://localhost.invalid:8080",
    "http://10.0.0.1:8080",
    "http://[::2]:8080",
]
HTTPS_URLS = [
    "https://api.kneo.invalid",
    "https://127.0.0.1:8443",
    "https://localhost.invalid",
]
# (url, allow_insecure_http) -> None when allowed, else the error class
GUARD_CASES: list[tuple[str, bool, type[KneoConfigurationError] | None]] = [
    *[(url, allow, None) for url in LOOPBACK_URLS for allow in (False, True)],
    *[(url, False, KneoInsecureTransportError) for url in LOOK_ALIKES],
    *[(url, True, None) for url in LOOK_ALIKES],
    *[(url, allow, None) for url in HTTPS_URLS for allow in (False, True)],
]


@pytest.mark.parametrize(("url", "allow", "refused"), GUARD_CASES)
@pytest.mark.parametrize("scheme", list(AuthScheme))
def test_client_config_sends_the_key_over_http_only_to_loopback(
    url: str, allow: bool, refused: type[KneoConfigurationError] | None, scheme: AuthScheme
) -> None:
    profile = Profile(
        name="p", url=url, api_key=CANARY, auth_scheme=scheme, allow_insecure_http=allow
    )
    if refused is None:
        config = profile.client_config()
        assert config.base_url == url.rstrip("/")
        assert config.allow_insecure_http is allow
        return
    with pytest.raises(refused, match="refusing to send the API key over plain http") as caught:
        profile.client_config()
    assert CANARY not in str(caught.value)
    assert isinstance(caught.value, KneoConfigurationError)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost@api.kneo.invalid",
        "http://user:pass@127.0.0.1:8080",
        "https://user@kneo.example.com",
        f"https://{CANARY}@kneo.example.com",
    ],
)
@pytest.mark.parametrize("allow", [False, True])
def test_user_info_in_the_base_url_is_always_refused(url: str, allow: bool) -> None:
    with pytest.raises(ProfileError, match="must not contain user info") as caught:
        Profile(name="p", url=url, api_key="k", allow_insecure_http=allow)
    assert CANARY not in str(caught.value)
    with pytest.raises(KneoConfigurationError, match="user info") as direct:
        ClientConfig(base_url=url, api_key="k", allow_insecure_http=allow)
    assert not isinstance(direct.value, KneoInsecureTransportError)


def test_client_config_without_a_key_may_use_plain_http_anywhere() -> None:
    config = ClientConfig(base_url="http://api.kneo.invalid/")
    assert config.auth is None
    assert config.base_url == "http://api.kneo.invalid"
    assert config.origin == "http://api.kneo.invalid"


def test_profile_client_config_carries_every_field() -> None:
    profile = Profile(
        name="p",
        url="https://kneo.example.com:8443/base/",
        api_key=CANARY,
        auth_scheme=AuthScheme.KNEO_API_KEY,
        timeout=7,
    )
    policy = RetryPolicy(max_attempts=1)
    config = profile.client_config(policy)
    assert config.base_url == "https://kneo.example.com:8443/base"
    assert config.origin == "https://kneo.example.com:8443"
    assert (config.api_key, config.auth_scheme, config.timeout) == (
        CANARY,
        AuthScheme.KNEO_API_KEY,
        7.0,
    )
    assert config.retry_policy is policy
    assert profile.client_config().retry_policy == RetryPolicy()
    assert profile.client_config().max_response_bytes == DEFAULT_MAX_RESPONSE_BYTES
    assert profile.client_config(max_response_bytes=1024).max_response_bytes == 1024
    assert config.user_agent == USER_AGENT
    assert USER_AGENT.startswith("kneo-client/")


LOOPBACK_CASES: list[tuple[str, bool]] = [
    ("localhost", True),
    ("LocalHost", True),
    ("localhost.", True),
    ("api.localhost", True),
    ("127.0.0.1", True),
    ("127.255.255.254", True),
    ("::1", True),
    ("[::1]", True),
    ("0:0:0:0:0:0:0:1", True),
    ("localhost.invalid", False),
    ("127.0.0.1.invalid", False),
    ("notlocalhost", False),
    ("10.0.0.1", False),
    ("::2", False),
    ("kneo.example.com", False),
    ("", False),
]


@pytest.mark.parametrize(("host", "loopback"), LOOPBACK_CASES)
def test_is_loopback_host_accepts_only_loopback_names_and_addresses(
    host: str, loopback: bool
) -> None:
    assert is_loopback_host(host) is loopback


BASE_URL_ERRORS: list[tuple[Any, str]] = [
    ("", "empty"),
    (None, "empty"),
    ("kneo.example.com", "absolute"),
    ("/v1", "absolute"),
    ("ftp://kneo.example.com", "absolute"),
    ("https://", "absolute"),
    ("https://u:p@kneo.example.com", "user info"),
    ("https://kneo.example.com?x=1", "query or fragment"),
    ("https://kneo.example.com#top", "query or fragment"),
    ("https://kneo.example.com:99999", "not valid"),
    ("https://[::1", "not valid"),
    # urlsplit drops tabs and line breaks, so the host checked would not be the one used.
    ("http://local\thost:8080", "whitespace or a control character"),
    ("http://127.0.0.1\n.api.kneo.invalid", "whitespace or a control character"),
    ("https://kneo example.com", "whitespace or a control character"),
    ("https://kneo.example.com/\x00", "whitespace or a control character"),
]


@pytest.mark.parametrize(("url", "fragment"), BASE_URL_ERRORS)
def test_parse_base_url_refuses_unusable_urls(url: Any, fragment: str) -> None:
    with pytest.raises(KneoConfigurationError, match=fragment):
        parse_base_url(url)
    with pytest.raises(KneoConfigurationError, match=fragment):
        ClientConfig(base_url=url, api_key="k")


def test_parse_base_url_strips_surrounding_whitespace() -> None:
    assert parse_base_url("  https://kneo.example.com/\n").hostname == "kneo.example.com"
    assert ClientConfig(base_url=" https://kneo.example.com/ ").base_url == (
        "https://kneo.example.com"
    )


CONFIG_ERRORS: list[tuple[dict[str, Any], str]] = [
    ({"timeout": 0}, "timeout must be a finite number"),
    ({"timeout": float("nan")}, "timeout must be a finite number"),
    ({"timeout": float("inf")}, "timeout must be a finite number"),
    ({"max_response_bytes": 0}, "max_response_bytes must be at least 1"),
    ({"user_agent": "kneo-client/1\r\nX-Injected: 1"}, "header User-Agent"),
]


@pytest.mark.parametrize(("overrides", "fragment"), CONFIG_ERRORS)
def test_client_config_refuses_unusable_settings(overrides: dict[str, Any], fragment: str) -> None:
    # A bad User-Agent is reported by the shared header check, as a KneoUsageError.
    with pytest.raises(KneoUsageError, match=fragment):
        ClientConfig(base_url=URL, api_key=CANARY, **overrides)


# -- strict_responses: keyword, TOML and KNEO_STRICT_RESPONSES (ADR 0011) ----------------------


def test_strict_responses_is_off_by_default() -> None:
    profile = resolve_profile(url=URL, api_key=CANARY)
    assert profile.strict_responses is False
    assert profile.client_config().strict_responses is False
    assert "strict_responses" not in repr(profile)


@pytest.mark.parametrize(
    ("toml_value", "env_value", "keyword", "expected"),
    [
        (True, None, None, True),
        (None, "1", None, True),
        (None, "yes", None, True),
        (None, " ON ", None, True),
        (True, "false", None, False),
        (None, "0", True, True),
        (True, "1", False, False),
        (None, "", None, False),  # an empty variable counts as unset
    ],
)
def test_strict_responses_resolves_toml_then_env_then_keyword(
    toml_value: bool | None, env_value: str | None, keyword: bool | None, expected: bool
) -> None:
    fields: dict[str, Any] = {"url": URL, "api_key": CANARY}
    if toml_value is not None:
        fields["strict_responses"] = toml_value
    env = {} if env_value is None else {"KNEO_STRICT_RESPONSES": env_value}
    profile = resolve_profile(toml_text=toml(**fields), env=env, strict_responses=keyword)
    assert profile.strict_responses is expected
    assert profile.client_config().strict_responses is expected
    assert ("strict_responses=True" in repr(profile)) is expected


@pytest.mark.parametrize("value", ["maybe", "2", "strict"])
def test_strict_responses_refuses_an_unclear_environment_value(value: str) -> None:
    env = {"KNEO_STRICT_RESPONSES": value, "KNEO_URL": URL, "KNEO_API_KEY": CANARY}
    with pytest.raises(ProfileError, match="strict_responses must be true or false") as caught:
        resolve_profile(env=env)
    assert repr(value) in str(caught.value)
    assert CANARY not in str(caught.value)


def test_strict_responses_refuses_a_toml_string() -> None:
    with pytest.raises(ProfileError, match="strict_responses"):
        resolve_profile(toml_text=toml(url=URL, api_key=CANARY, strict_responses="perhaps"))


def test_profile_repr_shows_log_and_tracing_only_when_set() -> None:
    plain = Profile(name="p", url="https://kneo.test", api_key="k_1234")
    assert "log=" not in repr(plain)
    assert "tracing" not in repr(plain)
    chosen = Profile(
        name="p", url="https://kneo.test", api_key="k_1234", log="DEBUG", tracing=False
    )
    assert repr(chosen).endswith(", log='debug', tracing=False)")
    assert (chosen.log, chosen.tracing) == ("debug", False)

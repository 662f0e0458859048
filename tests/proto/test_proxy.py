"""The proxy decision (``kneo_proto/_proxy.py``), pure: which proxy, or none, and why; proxy
URLs parsed strictly; the proxy fields of a profile; the errors a proxy causes. Table-driven;
no sockets, no ``os.environ`` (the environment is a mapping handed in)."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from kneo_proto import (
    ENV_PROXY,
    ENV_TRUST_ENV,
    Call,
    CallState,
    Failed,
    FailureKind,
    KneoConfigurationError,
    KneoInsecureTransportError,
    KneoNetworkError,
    KneoProxyError,
    Profile,
    ProfileError,
    Proxy,
    ProxyPlan,
    parse_proxy_url,
    plan_proxy,
    redact_url,
    resolve_profile,
)
from tests.proto.harness import FakeClock, make_config, operation

SECRET = "s3cret-Pa55"
TARGET = "https://kneo.example.com"

# -- which proxy: (environment, target, expected proxy URL or None, source or reason) -------

ENVIRONMENT_CASES: list[tuple[str, dict[str, str], str, str | None, str]] = [
    ("nothing set", {}, TARGET, None, "neither https_proxy nor all_proxy"),
    ("HTTPS_PROXY", {"HTTPS_PROXY": "http://p:3128"}, TARGET, "http://p:3128", "HTTPS_PROXY"),
    ("HTTP_PROXY is not for https", {"HTTP_PROXY": "http://p:3128"}, TARGET, None, "neither"),
    ("HTTP_PROXY for http", {"HTTP_PROXY": "http://p:1"}, "http://k.test", "http://p:1", "HTTP"),
    ("ALL_PROXY as fallback", {"ALL_PROXY": "socks5h://s"}, TARGET, "socks5h://s:1080", "ALL"),
    (
        "the scheme's variable before ALL_PROXY",
        {"ALL_PROXY": "socks5://s:1", "HTTPS_PROXY": "http://p:2"},
        TARGET,
        "http://p:2",
        "HTTPS_PROXY",
    ),
    (
        "lower case wins",
        {"https_proxy": "http://low:1", "HTTPS_PROXY": "http://up:2"},
        TARGET,
        "http://low:1",
        "https_proxy",
    ),
    (
        "an empty lower-case variable unsets its twin",
        {"https_proxy": "", "HTTPS_PROXY": "http://up:2", "all_proxy": "http://all:3"},
        TARGET,
        "http://all:3",
        "all_proxy",
    ),
    ("no scheme means http://", {"HTTPS_PROXY": "p.corp:8080"}, TARGET, "http://p.corp:8080", ""),
    ("blank value is unset", {"HTTPS_PROXY": "  "}, TARGET, None, "neither"),
    (
        "CGI: HTTP_PROXY may be a request header (httpoxy)",
        {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://evil:1"},
        "http://k.test",
        None,
        "neither",
    ),
    (
        "CGI: the lower-case http_proxy still counts",
        {"REQUEST_METHOD": "GET", "http_proxy": "http://ok:1"},
        "http://k.test",
        "http://ok:1",
        "http_proxy",
    ),
]


@pytest.mark.parametrize(
    ("env", "url", "proxy", "why"),
    [case[1:] for case in ENVIRONMENT_CASES],
    ids=[case[0] for case in ENVIRONMENT_CASES],
)
def test_plan_proxy_reads_the_environment_as_httpx_and_requests_do(
    env: dict[str, str], url: str, proxy: str | None, why: str
) -> None:
    plan = plan_proxy(url, env=env)
    assert (None if plan.proxy is None else plan.proxy.url) == proxy
    assert why in (plan.reason if plan.proxy is None else plan.proxy.source)
    assert plan.direct is (proxy is None)


# NO_PROXY entries: (entry, target, bypassed)
NO_PROXY_CASES: list[tuple[str, str, bool]] = [
    ("*", "https://anything.example", True),
    ("kneo.example.com", "https://kneo.example.com", True),
    ("example.com", "https://kneo.example.com", True),  # subdomains too, as in curl and urllib
    (".example.com", "https://example.com", True),
    (".example.com", "https://a.b.example.com", True),
    ("*.example.com", "https://api.example.com", True),
    ("example.com", "https://notexample.com", False),  # a label boundary, not a bare suffix
    ("EXAMPLE.COM.", "https://Api.Example.Com", True),
    ("kneo.example.com:443", "https://kneo.example.com", True),  # the scheme's default port
    ("kneo.example.com:8443", "https://kneo.example.com", False),
    ("kneo.example.com:8443", "https://kneo.example.com:8443", True),
    ("http://kneo.example.com/", "https://kneo.example.com", True),  # a scheme is ignored
    ("192.168.1.5", "https://192.168.1.5:8443", True),
    ("192.168.1.5", "https://192.168.1.6", False),
    ("10.0.0.0/8", "https://10.1.2.3", True),
    ("10.0.0.0/8", "https://11.0.0.1", False),
    ("10.0.0.0/8", "https://ten.internal", False),  # names are never resolved
    ("127.0.0.1", "http://localhost", False),  # nor is localhost
    ("localhost", "http://localhost:8080", True),
    ("::1", "https://[::1]:8443", True),
    ("[::1]", "https://[::1]", True),
    ("[::1]:8443", "https://[::1]:8443", True),
    ("[::1]:9999", "https://[::1]:8443", False),
    ("fd00::/8", "https://[fd00::1]", True),
    ("fd00::/8", "https://10.0.0.1", False),
    ("a.test, b.test", "https://b.test", True),
    ("a.test b.test", "https://b.test", True),
    ("a.test,,b.test ,", "https://c.test", False),
    ("10.0.0.0/99", "https://10.0.0.1", False),  # not a range: matches nothing
    ("", "https://kneo.example.com", False),
]


@pytest.mark.parametrize(("entry", "url", "bypassed"), NO_PROXY_CASES)
def test_no_proxy_entries_bypass_the_environment_proxy(
    entry: str, url: str, bypassed: bool
) -> None:
    plan = plan_proxy(url, env={"ALL_PROXY": "http://p:3128", "NO_PROXY": entry})
    assert plan.direct is bypassed, plan
    if bypassed:
        assert plan.reason.startswith("NO_PROXY entry ")


def test_no_proxy_lower_case_wins_and_an_empty_one_unsets_it() -> None:
    env = {"HTTPS_PROXY": "http://p:1", "NO_PROXY": "kneo.example.com", "no_proxy": ""}
    assert not plan_proxy(TARGET, env=env).direct
    env["no_proxy"] = ".example.com"
    assert plan_proxy(TARGET, env=env).reason == "no_proxy entry '.example.com'"


EXPLICIT_CASES: list[tuple[str, dict[str, Any], str | None, str]] = [
    ("keyword wins over the environment", {}, "socks5h://s:1080", "keyword proxy="),
    ("NO_PROXY does not apply to it", {"trust_env": True}, "socks5h://s:1080", "keyword"),
    ("trust_env=False keeps it", {"trust_env": False}, "socks5h://s:1080", "keyword"),
]


@pytest.mark.parametrize(
    ("options", "proxy", "source"),
    [case[1:] for case in EXPLICIT_CASES],
    ids=[case[0] for case in EXPLICIT_CASES],
)
def test_an_explicit_proxy_wins_over_the_environment(
    options: dict[str, Any], proxy: str | None, source: str
) -> None:
    env = {"HTTPS_PROXY": "http://env:1", "NO_PROXY": "*"}
    plan = plan_proxy(TARGET, proxy="socks5h://s", env=env, **options)
    assert plan.proxy is not None
    assert (plan.proxy.url, plan.reason) == (proxy, "keyword proxy=")
    assert source in plan.proxy.source


def test_trust_env_false_ignores_the_environment() -> None:
    plan = plan_proxy(TARGET, trust_env=False, env={"HTTPS_PROXY": "http://p:1"})
    assert plan == ProxyPlan(None, "trust_env is off: the proxy variables are not read")
    assert str(plan) == "direct (trust_env is off: the proxy variables are not read)"


def test_a_bad_environment_proxy_names_its_variable_and_masks_the_password() -> None:
    with pytest.raises(KneoConfigurationError) as caught:
        plan_proxy(TARGET, env={"HTTPS_PROXY": f"ftp://me:{SECRET}@p:21"})
    assert "from HTTPS_PROXY" in str(caught.value)
    assert "me:<redacted>@p:21" in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_a_bad_environment_proxy_is_not_read_when_no_proxy_exempts_the_target() -> None:
    env = {"HTTPS_PROXY": "ftp://p", "NO_PROXY": "example.com"}
    assert plan_proxy(TARGET, env=env).direct


# -- proxy URLs ---------------------------------------------------------------------------------

VALID_URLS: list[tuple[str, tuple[str, str, int, str | None, str | None]]] = [
    ("http://proxy:3128", ("http", "proxy", 3128, None, None)),
    ("http://proxy:3128/", ("http", "proxy", 3128, None, None)),
    ("HTTP://PROXY.Corp", ("http", "proxy.corp", 80, None, None)),
    ("https://proxy", ("https", "proxy", 443, None, None)),
    ("socks5://proxy", ("socks5", "proxy", 1080, None, None)),
    (f"socks5h://u:{SECRET}@proxy:9050", ("socks5h", "proxy", 9050, "u", SECRET)),
    ("http://[::1]:3128", ("http", "::1", 3128, None, None)),
    ("http://al%40ce:p%3Ass%2Fw%40rd@proxy", ("http", "proxy", 80, "al@ce", "p:ss/w@rd")),
    ("http://tok3n@proxy", ("http", "proxy", 80, "tok3n", None)),
    ("  http://proxy:1  ", ("http", "proxy", 1, None, None)),
]


@pytest.mark.parametrize(("url", "parts"), VALID_URLS)
def test_parse_proxy_url_accepts(
    url: str, parts: tuple[str, str, int, str | None, str | None]
) -> None:
    proxy = parse_proxy_url(url, "KNEO_PROXY")
    assert (proxy.scheme, proxy.host, proxy.port, proxy.username, proxy.password) == parts
    assert proxy.source == "KNEO_PROXY"


INVALID_URLS: list[tuple[object, str]] = [
    (3128, "must be a URL string"),
    ("", "is empty"),
    (f"u:{SECRET}@proxy:3128", "has no scheme"),
    (f"ftp://u:{SECRET}@proxy", "has scheme 'ftp'"),
    ("socks4://proxy:1080", "SOCKS4 is not supported"),
    ("ht!tp://proxy", "is not a valid URL"),
    ("http://", "has no host"),
    (f"http://u:{SECRET}@:3128", "has no host"),
    ("http://proxy:99999", "is not a valid URL"),
    ("http://proxy:port", "is not a valid URL"),
    ("http://proxy:0", "has port 0"),
    ("http://proxy:3128/path", "must not have a path"),
    ("http://proxy:3128?x=1", "must not have a path"),
    ("http://proxy:3128#f", "must not have a path"),
    ("http://pro xy:3128", "whitespace or a control character"),
    (f"http://u:{SECRET}\n@proxy", "whitespace or a control character"),
    (f"http://u:{SECRET}/x@proxy:3128", "percent-encoded"),  # '/' in the password
    (f"http://u:3128/{SECRET}@proxy", "must not have a path"),  # the password looks a port
    (f"http://u:{SECRET}#x@proxy", "percent-encoded"),
    ("http://прокси.рф:3128", "non-ASCII host"),
    (f"socks5://u:{'x' * 256}@proxy", "over 255 bytes"),
]


@pytest.mark.parametrize(("url", "problem"), INVALID_URLS)
def test_parse_proxy_url_refuses_with_a_clear_message_and_no_password(
    url: object, problem: str
) -> None:
    with pytest.raises(KneoConfigurationError) as caught:
        parse_proxy_url(url, "keyword proxy=")
    message = str(caught.value)
    assert problem in message
    assert "(from keyword proxy=)" in message
    for part in (SECRET, SECRET[:4], SECRET[4:], "x" * 256):
        assert part not in message
    assert caught.value.__suppress_context__ or caught.value.__context__ is None


def test_a_proxy_shows_no_credentials() -> None:
    proxy = parse_proxy_url(f"http://alice:{SECRET}@proxy:3128", "HTTPS_PROXY")
    assert proxy.auth == ("alice", SECRET)
    shown = [repr(proxy), str(proxy), proxy.url, repr(ProxyPlan(proxy, "HTTPS_PROXY"))]
    shown.append(str(ProxyPlan(proxy, "HTTPS_PROXY")))
    assert all(SECRET not in text and "alice" not in text for text in shown), shown
    assert repr(proxy) == "Proxy('http://proxy:3128', source='HTTPS_PROXY', credentials=<redacted>)"
    assert str(proxy) == "http://proxy:3128 (from HTTPS_PROXY)"
    assert (
        repr(Proxy("socks5", "::1", 1080))
        == "Proxy('socks5://[::1]:1080', source='keyword proxy=')"
    )


REDACTED_URLS = [
    ("http://alice:secret@proxy:3128", "http://alice:<redacted>@proxy:3128"),
    ("http://token@proxy", "http://<redacted>@proxy"),
    ("alice:secret@proxy:3128", "alice:<redacted>@proxy:3128"),
    ("http://a:p@ss/w#rd@proxy", "http://a:<redacted>@proxy"),
    ("http://proxy:3128", "http://proxy:3128"),
    ("", ""),
]


@pytest.mark.parametrize(("url", "shown"), REDACTED_URLS)
def test_redact_url_masks_the_credentials(url: str, shown: str) -> None:
    assert redact_url(url) == shown


# -- the profile's fields -----------------------------------------------------------------------

BASE: dict[str, Any] = {"url": TARGET, "api_key": "kneo_key_0123456789"}
TOML = f'[default]\nurl = "{TARGET}"\napi_key = "kneo_key_0123456789"\n'


@pytest.mark.parametrize(
    ("toml", "env", "keywords", "proxy", "source", "trust_env"),
    [
        ("", {}, {}, None, "[default] in the config file", True),
        ('proxy = "http://t:1"\n', {}, {}, "http://t:1", "[default] in the config file", True),
        ('proxy = "http://t:1"\n', {ENV_PROXY: "http://e:1"}, {}, "http://e:1", "KNEO_PROXY", True),
        ("", {ENV_PROXY: "http://e:1"}, {"proxy": "http://k:1"}, "http://k:1", "keyword", True),
        ("trust_env = false\n", {}, {}, None, "", False),
        ("trust_env = false\n", {ENV_TRUST_ENV: "yes"}, {}, None, "", True),
        ("", {ENV_TRUST_ENV: "0"}, {}, None, "", False),
        ("", {ENV_TRUST_ENV: "off"}, {"trust_env": True}, None, "", True),
    ],
)
def test_profile_proxy_and_trust_env_follow_toml_then_env_then_keywords(
    toml: str,
    env: dict[str, str],
    keywords: dict[str, Any],
    proxy: str | None,
    source: str,
    trust_env: bool,
) -> None:
    profile = resolve_profile(toml_text=TOML + toml, env=env, **keywords)
    assert (profile.proxy, profile.trust_env) == (proxy, trust_env)
    assert source in profile.proxy_source


def test_profile_repr_masks_the_proxy_password() -> None:
    profile = Profile(name="p", proxy=f"http://alice:{SECRET}@p:1", trust_env=False, **BASE)
    assert repr(profile).endswith("proxy='http://alice:<redacted>@p:1', trust_env=False)")
    assert profile.proxy_source == "profile 'p'"
    assert "proxy" not in repr(Profile(name="p", **BASE))


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"proxy": f"ftp://u:{SECRET}@p"}, "has scheme 'ftp'"),
        ({"proxy": 8080}, "must be a URL string"),
        ({"trust_env": "sometimes"}, "trust_env must be true or false"),
    ],
)
def test_profile_refuses_a_bad_proxy_setting_without_its_password(
    settings: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        Profile(name="p", **BASE, **settings)
    assert problem in str(caught.value)
    assert str(caught.value).startswith("profile 'p': ")
    assert SECRET not in repr(caught.value)


def test_a_proxy_from_toml_is_named_by_its_section_in_errors() -> None:
    with pytest.raises(ProfileError, match=r"\(from \[default\] in /etc/kneo.toml\)"):
        resolve_profile(toml_text=TOML + 'proxy = "gopher://p"\n', source="/etc/kneo.toml")


# -- the key in clear through a proxy -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "proxy", "refused"),
    [
        ("http://127.0.0.1:8080", "http://proxy.corp:3128", True),
        ("http://127.0.0.1:8080", "socks5://proxy.corp", True),
        ("http://127.0.0.1:8080", "https://proxy.corp", False),  # encrypted to the proxy
        ("http://127.0.0.1:8080", "http://127.0.0.1:3128", False),  # never leaves the machine
        ("https://kneo.example.com", "http://proxy.corp:3128", False),  # tunnelled TLS
    ],
)
def test_plain_http_through_a_proxy_on_another_host_counts_as_the_key_in_clear(
    url: str, proxy: str, refused: bool
) -> None:
    route = parse_proxy_url(proxy, "HTTP_PROXY")
    if refused:
        with pytest.raises(KneoInsecureTransportError, match=r"through the proxy .* HTTP_PROXY"):
            make_config(base_url=url, proxy=route)
        assert make_config(base_url=url, proxy=route, allow_insecure_http=True).sends_key_in_clear
    else:
        assert not make_config(base_url=url, proxy=route).sends_key_in_clear


# -- the errors a proxy causes ------------------------------------------------------------------

PROXY = parse_proxy_url(f"http://alice:{SECRET}@proxy.corp:3128", "HTTPS_PROXY")
BARE = parse_proxy_url("http://proxy.corp:3128", "keyword proxy=")


def failed_once(method: str, kind: FailureKind, detail: str, proxy: Proxy | None) -> Call[Any]:
    call = Call(
        operation(method),
        make_config(proxy=proxy),
        clock=FakeClock().clock(),
        rng=random.Random(1),
    )
    call.next_action()
    call.receive_failure(kind, detail)
    return call


def fail_again(call: Call[Any], kind: FailureKind, detail: str) -> None:
    assert call.state is CallState.BACKING_OFF
    call.next_action()  # the sleep
    call.next_action()  # the next attempt
    call.receive_failure(kind, detail)


def error_of(call: Call[Any]) -> Any:
    outcome = call.next_action()
    assert isinstance(outcome, Failed), outcome
    return outcome.error


# (kind, detail, proxy, retried, status, words in the message)
FAILURES: list[tuple[FailureKind, str, Proxy | None, bool, int | None, str]] = [
    (FailureKind.PROXY, "407 Proxy Authentication Required", PROXY, False, 407, "check the user"),
    (FailureKind.PROXY, "407 Proxy Authentication Required", BARE, False, 407, "USER:PASSWORD@"),
    (FailureKind.PROXY, "407 Proxy Authentication Required", None, False, 407, "the proxy refused"),
    (FailureKind.PROXY, "403 Forbidden", PROXY, False, 403, "refused the tunnel: 403 Forbidden"),
    (FailureKind.PROXY, "502 Bad Gateway", PROXY, True, 502, "refused the tunnel: 502"),
    (FailureKind.PROXY, "Invalid username/password", PROXY, False, None, "check the user"),
    (
        FailureKind.PROXY,
        "Proxy Server could not connect: Host unreachable.",
        PROXY,
        False,
        None,
        "",
    ),
    (FailureKind.CONNECT, "[Errno 111] Connection refused", PROXY, True, None, "could not connect"),
]


@pytest.mark.parametrize(("kind", "detail", "proxy", "retried", "status", "words"), FAILURES)
@pytest.mark.parametrize("method", ["GET", "PATCH"])
def test_a_proxy_failure_is_a_kneo_proxy_error_naming_the_proxy(
    method: str,
    kind: FailureKind,
    detail: str,
    proxy: Proxy | None,
    retried: bool,
    status: int | None,
    words: str,
) -> None:
    """Nothing reached the platform, so even a PATCH is retried when a retry can help."""
    call = failed_once(method, kind, detail, proxy)
    assert call.state is (CallState.BACKING_OFF if retried else CallState.FAILED)
    if retried:
        return
    error = error_of(call)
    assert isinstance(error, KneoProxyError)
    assert isinstance(error, KneoNetworkError)
    assert (error.kind, error.proxy_status, error.attempts) == ("proxy", status, 1)
    assert words in error.message
    assert detail in error.message
    if proxy is not None:
        assert f"{proxy.url} (from {proxy.source})" in error.message
        assert (error.proxy, error.proxy_source) == (proxy.url, proxy.source)
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.proxy, copy.proxy_status, str(copy)) == (error.proxy, status, str(error))
    assert SECRET not in repr(error)
    assert "alice" not in str(error)


def test_an_unreachable_proxy_names_the_proxy_not_the_target() -> None:
    call = failed_once("GET", FailureKind.CONNECT, "[Errno 111] Connection refused", PROXY)
    for _ in range(2):
        fail_again(call, FailureKind.CONNECT, "[Errno 111] Connection refused")
    error = error_of(call)
    assert isinstance(error, KneoProxyError)
    assert error.attempts == 3
    assert error.message.startswith(
        "GET /v1/x: could not connect to the proxy http://proxy.corp:3128 (from HTTPS_PROXY)"
    )
    assert "kneo.test" not in error.message


def test_a_connect_failure_without_a_proxy_stays_a_network_error() -> None:
    call = failed_once("PATCH", FailureKind.CONNECT, "refused", None)
    for _ in range(2):
        fail_again(call, FailureKind.CONNECT, "refused")
    error = error_of(call)
    assert type(error) is KneoNetworkError


@pytest.mark.parametrize(("proxy", "hint"), [(PROXY, "check the user"), (BARE, "USER:PASSWORD")])
def test_a_407_answer_names_the_proxy_and_is_not_retried(proxy: Proxy, hint: str) -> None:
    call = Call(operation("GET"), make_config(proxy=proxy), clock=FakeClock().clock())
    call.next_action()
    call.receive_response(407, [("Proxy-Authenticate", 'Basic realm="corp"')], b"denied")
    error = error_of(call)
    assert isinstance(error, KneoProxyError)
    assert (error.status, error.proxy_status, error.kind) == (407, 407, "proxy")
    assert f"answered by the proxy {proxy}" in error.message
    assert hint in error.message
    assert error.message.endswith(f"(request_id={call.request_id})")
    assert error.args == (error.message,)
    assert SECRET not in repr(error)


def test_a_407_without_a_known_proxy_is_still_a_proxy_error() -> None:
    call = Call(operation("GET"), make_config(), clock=FakeClock().clock())
    call.next_action()
    call.receive_response(407, [], b"")
    error = error_of(call)
    assert isinstance(error, KneoProxyError)
    assert error.proxy is None
    assert "answered by the proxy; check the user name and password" in error.message

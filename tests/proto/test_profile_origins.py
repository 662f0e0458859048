"""Profile errors that say where the bad value came from (issue 11, part 5, items 4-6): the
``KNEO_*`` variable, the TOML file and section, or the keyword; a profile asked for by name
that no config file has; TOML keys outside any section. Never the API key's value."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from kneo_proto import ProfileError, resolve_profile
from kneo_proto._origins import Origin, locate

CANARY = "kneo_canary_" + secrets.token_hex(18)
URL = "https://kneo.example.com"
FILE = "/home/me/.config/kneo/client.toml"
GOOD_ENV = {"KNEO_URL": URL, "KNEO_API_KEY": CANARY}
GOOD = {"url": URL, "api_key": CANARY}
ENV_FIX = "; fix or unset that variable"
FILE_FIX = "; fix it in that file"
KEYWORD_FIX = "; fix the argument"


def section(**fields: Any) -> str:
    """A ``[default]`` section holding the good url and key plus ``fields`` (TOML-written)."""
    lines = ["[default]", f'url = "{URL}"', f'api_key = "{CANARY}"']
    for name, value in fields.items():
        shown = f'"{value}"' if isinstance(value, str) else str(value).lower()
        lines.append(f"{name} = {shown}")
    return "\n".join(lines) + "\n"


def test_profile_origin_tables_are_not_empty() -> None:
    for table in (LOCATED, MISSING):
        assert table


# (toml text, env, keywords) -> the whole message
LOCATED: list[tuple[str | None, dict[str, str], dict[str, Any], str]] = [
    (
        None,
        {**GOOD_ENV, "KNEO_TIMEOUT": "abc"},
        {},
        "profile 'default': timeout must be a number of seconds - set by KNEO_TIMEOUT='abc'"
        + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_TIMEOUT": "-1"},
        {},
        "profile 'default': timeout must be a finite number > 0 - set by KNEO_TIMEOUT='-1'"
        + ENV_FIX,
    ),
    (
        section(timeout="soon"),
        {},
        {},
        "profile 'default': timeout must be a number of seconds - set by timeout = 'soon' in "
        f"[default] of {FILE}" + FILE_FIX,
    ),
    (
        section(timeout=0),
        {"KNEO_TIMEOUT": ""},  # empty: unset, so the file's value is the one at fault
        {},
        "profile 'default': timeout must be a finite number > 0 - set by timeout = 0 in "
        f"[default] of {FILE}" + FILE_FIX,
    ),
    (
        section(timeout=5),
        {"KNEO_TIMEOUT": "nan"},  # the later source is the one at fault
        {},
        "profile 'default': timeout must be a finite number > 0 - set by KNEO_TIMEOUT='nan'"
        + ENV_FIX,
    ),
    (
        None,
        GOOD_ENV,
        {"timeout": -0.5},
        "profile 'default': timeout must be a finite number > 0 - set by the keyword argument "
        "timeout=-0.5" + KEYWORD_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_URL": "kneo.example.com"},
        {},
        "profile 'default': base URL must be absolute http:// or https:// with a host, e.g. "
        "https://kneo.example.com - set by KNEO_URL" + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_URL": "https://kneo.example.com?x=1"},
        {},
        "profile 'default': base URL must not have a query or fragment - set by "
        "KNEO_URL='https://kneo.example.com?x=1'" + ENV_FIX,
    ),
    (
        None,
        {},
        {**GOOD, "url": f"https://me:{CANARY}@kneo.example.com"},
        "profile 'default': base URL must not contain user info; use the API key - set by the "
        "keyword argument url" + KEYWORD_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_URL": CANARY},  # the key pasted into the wrong variable
        {},
        "profile 'default': base URL must be absolute http:// or https:// with a host, e.g. "
        "https://kneo.example.com - set by KNEO_URL" + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_API_KEY": CANARY + " x"},
        {},
        "profile 'default': API key contains whitespace or a control character - set by "
        "KNEO_API_KEY" + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_AUTH_SCHEME": CANARY},
        {},
        "profile 'default': auth_scheme must be one of 'bearer', 'kneo_api_key' - set by "
        "KNEO_AUTH_SCHEME" + ENV_FIX,
    ),
    (
        section(auth_scheme=7),
        {},
        {},
        "profile 'default': auth_scheme must be one of 'bearer', 'kneo_api_key' - set by "
        f"auth_scheme in [default] of {FILE}" + FILE_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_TIMEOUT": CANARY},  # any value holding the key stays hidden
        {},
        "profile 'default': timeout must be a number of seconds - set by KNEO_TIMEOUT" + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_STRICT_RESPONSES": "maybe"},
        {},
        "profile 'default': strict_responses must be true or false (the environment also "
        "takes 1/0, yes/no, on/off), not 'maybe' - set by KNEO_STRICT_RESPONSES='maybe'" + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_CA_BUNDLE": "  "},
        {},
        "profile 'default': ca_bundle must be the path of a PEM file - set by "
        "KNEO_CA_BUNDLE='  '" + ENV_FIX,
    ),
    (
        None,
        {**GOOD_ENV, "KNEO_CA_BUNDLE": "/etc/ca\a.pem"},
        {},
        "profile 'default': ca_bundle contains a control character - set by "
        "KNEO_CA_BUNDLE='/etc/ca\\x07.pem'" + ENV_FIX,
    ),
    (
        section(url=5).replace(f'url = "{URL}"\n', ""),
        {},
        {},
        f"profile 'default': url must be a string - set by url in [default] of {FILE}" + FILE_FIX,
    ),
    (
        section(api_key=5).replace(f'api_key = "{CANARY}"\n', ""),
        {},
        {},
        f"profile 'default': api_key must be a string - set by api_key in [default] of {FILE}"
        + FILE_FIX,
    ),
    (
        section(allow_insecure_http="yes"),
        {},
        {},
        "profile 'default': allow_insecure_http must be true or false - set by "
        f"allow_insecure_http = 'yes' in [default] of {FILE}" + FILE_FIX,
    ),
]


@pytest.mark.parametrize(("text", "env", "kwargs", "message"), LOCATED)
def test_profile_error_names_where_the_bad_value_came_from(
    text: str | None, env: dict[str, str], kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        resolve_profile(toml_text=text, env=env, source=FILE, **kwargs)
    error = caught.value
    assert str(error) == message
    assert CANARY not in str(error)
    assert CANARY not in repr(error)
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__


def test_locate_leaves_an_error_about_no_setting_or_a_default_as_it_is() -> None:
    origins = {"timeout": Origin("env", "KNEO_TIMEOUT")}
    general = ProfileError("no setting at fault")
    assert locate(general, {}, origins) is general
    defaulted = ProfileError("profile 'p': timeout must be ...", setting="auth_scheme")
    assert locate(defaulted, {}, origins) is defaulted


# -- item 5: a profile asked for by name that no config file has -----------------------------

ASK_NO_NAME = (
    "Create it with a [{name}] section, or ask for no profile by name (no name argument, "
    "KNEO_PROFILE unset) to build one from KNEO_URL, KNEO_API_KEY and keyword arguments"
)
# (name argument, KNEO_PROFILE) -> how the message names the profile
MISSING: list[tuple[str | None, str | None, str]] = [
    ("stagin", None, "profile 'stagin'"),
    (None, "stagin", "profile 'stagin' (named by KNEO_PROFILE)"),
    ("stagin", "prod", "profile 'stagin'"),
    ("default", None, "profile 'default'"),
]


@pytest.mark.parametrize(("name", "env_profile", "named"), MISSING)
@pytest.mark.parametrize("kwargs", [{}, GOOD], ids=["env", "env-and-keywords"])
def test_a_profile_named_explicitly_must_exist_when_there_is_no_file(
    name: str | None, env_profile: str | None, named: str, kwargs: dict[str, Any]
) -> None:
    """Even with url and key in the environment and the keywords: a typo must not pass."""
    env = {**GOOD_ENV, **({} if env_profile is None else {"KNEO_PROFILE": env_profile})}
    with pytest.raises(ProfileError) as caught:
        resolve_profile(name, toml_text=None, env=env, source=FILE, **kwargs)
    shown = named.removeprefix("profile ").split(" ")[0].strip("'")
    assert str(caught.value) == (
        f"{named} not found: {FILE} does not exist (file not found). "
        + ASK_NO_NAME.format(name=shown)
    )


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [(GOOD_ENV, {}), ({}, GOOD), ({"KNEO_URL": URL}, {"api_key": CANARY})],
)
def test_an_unnamed_profile_still_comes_from_env_and_keywords_without_a_file(
    env: dict[str, str], kwargs: dict[str, Any]
) -> None:
    """The reference's ``load_profile()`` with only ``KNEO_URL`` and ``KNEO_API_KEY`` set."""
    profile = resolve_profile(toml_text=None, env=env, source=FILE, **kwargs)
    assert (profile.name, profile.url, profile.api_key) == ("default", URL, CANARY)


# -- item 6: keys outside any [section] ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f'url = "{URL}"\n[default]\napi_key = "{CANARY}"\n',
            f"url = ... at the top of {FILE} is outside any [profile] section, so no profile "
            "reads it; put it under [default] (a line reading [default] above it)",
        ),
        (
            f'url = "{URL}"\napi_key = "{CANARY}"\n',
            f"url = ..., api_key = ... at the top of {FILE} are outside any [profile] section, "
            "so no profile reads them; put them under [default] (a line reading [default] "
            "above them)",
        ),
        (
            f'timeout = 5\n[staging]\nurl = "{URL}"\napi_key = "{CANARY}"\n',
            f"timeout = ... at the top of {FILE} is outside any [profile] section, so no "
            "profile reads it; put it under [default] (a line reading [default] above it)",
        ),
    ],
    ids=["one key", "only keys", "no default section"],
)
def test_toml_keys_outside_any_section_are_refused(text: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        resolve_profile(toml_text=text, env=GOOD_ENV, source=FILE)
    assert str(caught.value) == message
    assert CANARY not in str(caught.value)


def test_toml_keys_outside_any_section_name_the_profile_asked_for() -> None:
    text = f'api_key = "{CANARY}"\n[staging]\nurl = "{URL}"\n'
    with pytest.raises(ProfileError, match=r"put it under \[staging\]") as caught:
        resolve_profile("staging", toml_text=text, source=FILE)
    assert CANARY not in str(caught.value)


def test_a_profile_named_like_a_top_level_key_is_still_a_table_error() -> None:
    with pytest.raises(ProfileError, match=rf"^\[default\] in {FILE} must be a table$"):
        resolve_profile(toml_text=f'default = "{URL}"\n', env=GOOD_ENV, source=FILE)


def test_a_usable_value_from_any_source_is_taken_as_it_is() -> None:
    env = {**GOOD_ENV, "KNEO_CA_BUNDLE": "/etc/kneo/ca.pem", "KNEO_TIMEOUT": "12.5"}
    profile = resolve_profile(toml_text=section(strict_responses=True), env=env, source=FILE)
    assert (profile.ca_bundle, profile.timeout, profile.strict_responses) == (
        "/etc/kneo/ca.pem",
        12.5,
        True,
    )

"""Where each profile setting came from (a ``KNEO_*`` variable, a TOML section, a keyword),
so that an error about a value names the place to fix it, not only the field.

Invariants: pure; the origin is named exactly as the user wrote it (the variable, the file
and its ``[section]``, the keyword). A value is shown only for settings that cannot hold a
secret: never the API key, the auth scheme (a key pasted into ``KNEO_AUTH_SCHEME`` must not
be echoed), a proxy (its user info holds a password), a URL with user info or that is not
an http(s) URL at all (a key pasted into ``KNEO_URL``), nor any value containing the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kneo_proto._errors import ProfileError

__all__ = ["Origin", "locate", "missing_profile", "origins_of", "stray_keys"]

# Settings whose values are safe to repeat in a message (``url`` only when it looks like one).
_SHOWN = frozenset(
    {"timeout", "allow_insecure_http", "ca_bundle", "strict_responses", "trust_env", "url"}
)
_FIX = {
    "env": "fix or unset that variable",
    "toml": "fix it in that file",
    "keyword": "fix the argument",
}


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one setting's value came from.

    Attributes:
        kind: ``"env"``, ``"toml"`` or ``"keyword"``.
        where: The variable's name, or ``[section] of FILE``; empty for a keyword.
    """

    kind: Literal["env", "toml", "keyword"]
    where: str = ""


def origins_of(
    *,
    section: Mapping[str, Any],
    from_env: Mapping[str, Any],
    from_keywords: Mapping[str, Any],
    env_names: Mapping[str, str],
    name: str,
    source: str,
) -> dict[str, Origin]:
    """Each setting's origin, later sources winning as they do for the values."""
    origins = {field: Origin("toml", f"[{name}] of {source}") for field in section}
    origins |= {field: Origin("env", env_names[field]) for field in from_env}
    origins |= {field: Origin("keyword") for field in from_keywords}
    return origins


def _shown(field: str, value: object, secret: object) -> str | None:
    """``repr(value)`` when it may appear in a message, else None."""
    key = secret.strip() if isinstance(secret, str) else ""
    if field not in _SHOWN or (key and key in str(value)):
        return None
    if field == "url" and not (
        isinstance(value, str)
        and value.strip().lower().startswith(("http://", "https://"))
        and "@" not in value
    ):
        return None
    return repr(value)


def _describe(field: str, value: object, origin: Origin, secret: object) -> str:
    shown = _shown(field, value, secret)
    if origin.kind == "env":
        return origin.where if shown is None else f"{origin.where}={shown}"
    if origin.kind == "toml":
        head = field if shown is None else f"{field} = {shown}"
        return f"{head} in {origin.where}"
    return f"the keyword argument {field}" + ("" if shown is None else f"={shown}")


def locate(
    error: ProfileError, values: Mapping[str, Any], origins: Mapping[str, Origin]
) -> ProfileError:
    """``error`` with where its setting's value came from, and what to do, added.

    An error about no setting, or one whose setting has no origin (a default), is returned
    as it is.
    """
    origin = origins.get(error.setting or "")
    if error.setting is None or origin is None:
        return error
    said = _describe(error.setting, values.get(error.setting), origin, values.get("api_key"))
    return ProfileError(
        f"{error.message} - set by {said}; {_FIX[origin.kind]}", setting=error.setting
    )


def missing_profile(name: str, source: str, *, from_env: bool) -> ProfileError:
    """A profile named explicitly while there is no config file at all."""
    asked = f"profile {name!r} (named by KNEO_PROFILE)" if from_env else f"profile {name!r}"
    return ProfileError(
        f"{asked} not found: {source} does not exist (file not found). Create it with a "
        f"[{name}] section, or ask for no profile by name (no name argument, KNEO_PROFILE "
        "unset) to build one from KNEO_URL, KNEO_API_KEY and keyword arguments"
    )


def stray_keys(data: Mapping[str, Any], name: str, source: str) -> ProfileError | None:
    """TOML keys outside any ``[section]``, which no profile would read; None when none.

    Their values are never shown (one may be the key).
    """
    stray = [key for key, value in data.items() if not isinstance(value, dict)]
    if not stray:
        return None
    keys = ", ".join(f"{key} = ..." for key in stray)
    verb, them = ("is", "it") if len(stray) == 1 else ("are", "them")
    return ProfileError(
        f"{keys} at the top of {source} {verb} outside any [profile] section, so no profile "
        f"reads {them}; put {them} under [{name}] (a line reading [{name}] above {them})"
    )

"""Profiles: ``Profile``, ``load_profile`` and the ``KNEO_*`` environment variables.

``load_profile`` reads the config file and ``os.environ`` and hands them to the pure
``kneo_proto.resolve_profile``, which applies the precedence: TOML, then environment, then
keyword arguments.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kneo_proto import (
    DEFAULT_PROFILE_NAME,
    DEFAULT_TIMEOUT_SECONDS,
    ENV_API_KEY,
    ENV_AUTH_SCHEME,
    ENV_CA_BUNDLE,
    ENV_LOG,
    ENV_PROFILE,
    ENV_PROXY,
    ENV_STRICT_RESPONSES,
    ENV_TIMEOUT,
    ENV_TRACING,
    ENV_TRUST_ENV,
    ENV_URL,
    AuthScheme,
    Profile,
    ProfileError,
    resolve_profile,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "DEFAULT_PROFILE_NAME",
    "DEFAULT_TIMEOUT_SECONDS",
    "ENV_API_KEY",
    "ENV_AUTH_SCHEME",
    "ENV_CA_BUNDLE",
    "ENV_STRICT_RESPONSES",
    "ENV_PROFILE",
    "ENV_PROXY",
    "ENV_TIMEOUT",
    "ENV_TRUST_ENV",
    "ENV_LOG",
    "ENV_TRACING",
    "ENV_URL",
    "Profile",
    "ProfileError",
    "default_config_path",
    "load_profile",
]


def default_config_path() -> Path:
    """Return where ``client.toml`` lives by default: ``user_config_dir("kneo")``.

    ``~/.config/kneo/client.toml`` on Linux, ``~/Library/Application Support/kneo/client.toml``
    on macOS, and so on, via platformdirs.
    """
    from pathlib import Path

    import platformdirs  # imported on first use: it is not needed to import kneo_client

    return Path(platformdirs.user_config_dir("kneo")) / "client.toml"


def _read_config(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ProfileError(f"cannot read config file {path}: {reason}") from None


def load_profile(
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
) -> Profile:
    """Resolve a ``Profile`` from the TOML config, ``KNEO_*`` variables and keywords.

    Resolution order (later overrides earlier): the TOML at ``config_file`` (default
    ``default_config_path()``; a missing file is skipped), then ``KNEO_URL``,
    ``KNEO_API_KEY``, ``KNEO_AUTH_SCHEME``, ``KNEO_TIMEOUT``, ``KNEO_CA_BUNDLE``,
    ``KNEO_STRICT_RESPONSES``, then the keyword arguments. ``ca_bundle`` is the path of a
    PEM file of CA certificates that https connections trust instead of the system's (a
    private CA); it is read when a client is built.
    ``KNEO_PROFILE`` selects the TOML section when ``name`` is None. ``allow_insecure_http``
    (the plain-http opt-in) comes from the TOML or the keyword only, never the environment.
    ``strict_responses`` (TOML, ``KNEO_STRICT_RESPONSES=1`` or the keyword) validates every
    response against ``spec/`` in full instead of the tolerant default. ``proxy`` (TOML,
    ``KNEO_PROXY`` or the keyword) is the URL of the proxy every request goes through; without
    one, ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` apply unless
    ``trust_env`` (TOML, ``KNEO_TRUST_ENV=0`` or the keyword) is false. ``log`` (TOML,
    ``KNEO_LOG`` or the keyword: ``debug``, ``info``, ``warning``, ``error`` or ``off``) sends
    kneo-client's log records at that level to stderr; ``tracing`` (TOML, ``KNEO_TRACING=0``
    or the keyword) turns OpenTelemetry spans and metrics off when false.

    Raises:
        ProfileError: if url or api_key cannot be resolved, or the config is malformed.
    """
    from pathlib import Path  # here, not at the top: a profile built in code never needs it

    path = Path(config_file) if config_file is not None else default_config_path()
    return resolve_profile(
        name,
        toml_text=_read_config(path),
        env=os.environ,
        source=str(path),
        url=url,
        api_key=api_key,
        auth_scheme=auth_scheme,
        timeout=timeout,
        allow_insecure_http=allow_insecure_http,
        ca_bundle=ca_bundle,
        strict_responses=strict_responses,
        proxy=proxy,
        trust_env=trust_env,
        log=log,
        tracing=tracing,
    )

"""T33: an API key is validated when the client is built, through every public door.

``tests/proto/test_profiles.py`` holds the key classes (``KEY_CASES``: trailing LF and CRLF,
surrounding whitespace, 10 KiB, punctuation, inner space/NUL/TAB/LF, DEL, VT, U+2028,
non-ASCII, no-break space, empty, only whitespace) and checks them on the pure layer. This
file takes the same table to the doors a user uses: ``KneoClient(Profile(...))``,
``SyncKneoClient.from_profile(api_key=...)`` and ``KNEO_API_KEY`` through ``load_profile``,
in both auth modes. A refused key raises ``ProfileError`` naming the problem, never the key,
before any I/O (the network guard counts connects and lookups); an accepted one is sent
stripped, exactly as the auth scheme says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kneo_client import KneoClient, SyncKneoClient, load_profile
from kneo_drivers.memory import MemoryDriver
from kneo_proto import ENV_API_KEY, ENV_URL, AuthScheme, Profile, ProfileError, Request, Response
from tests.network_guard import NetworkGuard
from tests.proto.test_profiles import CANARY, KEY_CASES

pytestmark = pytest.mark.plan("T33")

URL = "https://kneo.test"


@dataclass
class Tally:
    attempts: int = 0
    refused: int = 0
    accepted: int = 0
    key_in_error: int = 0
    connects: int = 0


TALLY = Tally()


def sent_credential(raw: str, scheme: AuthScheme, build: str, missing: Path) -> str:
    """Build a client from ``raw`` through the door ``build``; return the credential sent."""
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(
            200, (("Content-Type", "application/json"),), b'{"credentials":[],"count":0}'
        )

    driver = MemoryDriver(handler)
    if build == "Profile":
        profile = Profile(name="p", url=URL, api_key=raw, auth_scheme=scheme)
    elif build == "from_profile":
        profile = SyncKneoClient.from_profile(
            config_file=missing, url=URL, api_key=raw, auth_scheme=scheme
        ).profile
    else:
        profile = load_profile(config_file=missing, auth_scheme=scheme)
    KneoClient(profile)  # the async client accepts it too (built, never used)
    with SyncKneoClient(profile, driver=driver) as client:
        client.platform.credentials.list()
    [request] = seen
    return request.header("authorization") or request.header("x-kneo-api-key") or ""


DOORS = ["Profile", "from_profile", "KNEO_API_KEY"]


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.parametrize(("label", "raw", "sent", "fragment"), KEY_CASES)
def test_keys_are_checked_when_the_client_is_built(
    label: str,
    raw: str,
    sent: str | None,
    fragment: str,
    scheme: AuthScheme,
    door: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    network_guard_installed: NetworkGuard,
) -> None:
    if door == "KNEO_API_KEY" and "\x00" in raw:
        pytest.skip("an environment variable cannot hold NUL")
    monkeypatch.setenv(ENV_URL, URL)
    monkeypatch.setenv(ENV_API_KEY, raw if door == "KNEO_API_KEY" else "unused-key")
    missing = tmp_path / "client.toml"
    if door != "Profile" and raw == "":
        # An empty variable or keyword counts as unset: the key is missing (ProfileError).
        fragment = "no api_key"
    TALLY.attempts += 1
    if sent is None:
        with pytest.raises(ProfileError, match=fragment) as caught:
            sent_credential(raw, scheme, door, missing)
        TALLY.refused += 1
        shown = f"{caught.value} {caught.value!r} {caught.value.args}"
        TALLY.key_in_error += CANARY in shown
        assert CANARY not in shown
    else:
        credential = sent_credential(raw, scheme, door, missing)
        TALLY.accepted += 1
        prefix = "Bearer " if scheme is AuthScheme.BEARER else ""
        assert credential == prefix + sent, label
    TALLY.connects += network_guard_installed.connects + network_guard_installed.lookups
    assert network_guard_installed.connects == network_guard_installed.lookups == 0


def test_key_validation_figure(figure: Callable[[str, str], None]) -> None:
    if not TALLY.attempts:
        pytest.skip("the key tests did not run (deselected)")
    figure(
        "T33",
        f"{len(KEY_CASES)} key classes x {len(AuthScheme)} auth modes x {len(DOORS)} doors = "
        f"{TALLY.attempts} client builds: {TALLY.refused} refused with ProfileError naming "
        f"the problem, {TALLY.accepted} accepted and sent stripped; key occurrences in the "
        f"error text {TALLY.key_in_error}, connects or lookups attempted {TALLY.connects}",
    )

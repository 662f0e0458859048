"""T34: a 3xx is never followed; it surfaces as ``KneoUnexpectedRedirectError``.

Origin A is ``http://127.0.0.1:pA``, or C, ``https://localhost:pC`` (trustme CA, so a
redirect to http is a downgrade). Every request to A or C is answered with 301, 302, 303,
307 or 308 and a ``Location`` pointing at origin B (``http://localhost:pB``) absolutely,
scheme-relatively or with user info, or relative to A itself (with and without a leading
slash). The call is a GET and a keyed POST, in both auth modes, on the async client (asyncio
and trio) and the blocking one. kneo-client has no follow mode, so the promise is the
default one: the error exposes the status and the ``Location`` as sent, the call makes one
attempt, and B receives nothing at all (so no credential ever reaches it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any

import anyio
import pytest

from kneo_client import KneoClient, SyncKneoClient
from kneo_proto import AuthScheme, KneoUnexpectedRedirectError, Profile, Request, Response
from tests.support.tls import RecordingServer, issue_certificates, serving

pytestmark = [pytest.mark.plan("T34"), pytest.mark.timeout(60)]

KEY = "kneo_canary_" + token_hex(18)
STATUSES = [301, 302, 303, 307, 308]
LOCATION_FORMS: dict[str, Callable[[str], str]] = {
    "absolute, origin B": lambda b: f"{b}/v1/runs/elsewhere",
    "scheme-relative, origin B": lambda b: "//" + b.split("://", 1)[1] + "/v1/runs/elsewhere",
    "user info, origin B": lambda b: b.replace("://", "://user:secret@") + "/v1/runs/elsewhere",
    "relative path": lambda b: "/v1/runs/elsewhere",
    "relative, no slash": lambda b: "elsewhere?x=1",
}
ORIGINS = ["http", "https"]
LIMIT = 20.0


class Redirector:
    """Answers every request with ``status`` and ``location``."""

    def __init__(self) -> None:
        self.status = 302
        self.location = "/"

    def __call__(self, request: Request) -> Response:
        body = b'{"error": {"code": "moved", "message": "see Location"}}'
        headers = (("Content-Type", "application/json"), ("Location", self.location))
        return Response(self.status, headers, body)


@dataclass
class Tally:
    calls: int = 0
    typed: int = 0
    at_b: int = 0
    credentialed_at_b: int = 0


TALLY = Tally()


@dataclass
class World:
    redirector: Redirector
    a: RecordingServer
    b: RecordingServer
    ca_bundle: str | None

    def profile(self, scheme: AuthScheme) -> Profile:
        return Profile(
            name="redirects",
            url=self.a.url,
            api_key=KEY,
            auth_scheme=scheme,
            ca_bundle=self.ca_bundle,
        )

    def cases(self) -> Iterator[tuple[int, str, str, str]]:
        """(status, form, location, method); sets the redirect before each is yielded."""
        for status in STATUSES:
            for form, build in LOCATION_FORMS.items():
                for method in ("GET", "POST"):
                    self.redirector.status = status
                    self.redirector.location = build(self.b.url)
                    yield status, form, self.redirector.location, method

    def check(self, error: BaseException | None, status: int, location: str, sent: int) -> None:
        TALLY.calls += 1
        assert isinstance(error, KneoUnexpectedRedirectError), repr(error)
        TALLY.typed += 1
        assert (error.status, error.location, error.attempts) == (status, location, 1)
        assert KEY not in str(error)
        assert len(self.a.requests) == sent, "a redirect was retried"

    def finish(self) -> None:
        TALLY.at_b += len(self.b.requests) + self.b.accepted
        TALLY.credentialed_at_b += sum(
            1
            for seen in self.b.requests
            if seen.header("authorization") or seen.header("x-kneo-api-key")
        )
        assert self.b.accepted == 0, "origin B was contacted"


@contextmanager
def world(origin: str, tmp_path: Path) -> Iterator[World]:
    redirector = Redirector()
    with ExitStack() as stack:
        b = stack.enter_context(serving(RecordingServer(url_host="localhost")))
        if origin == "https":
            certs = issue_certificates(tmp_path)
            server = RecordingServer(redirector, ssl_context=certs.localhost, url_host="localhost")
            ca_bundle: str | None = certs.ca_bundle
        else:
            server = RecordingServer(redirector)
            ca_bundle = None
        a = stack.enter_context(serving(server))
        here = World(redirector, a, b, ca_bundle)
        yield here
        here.finish()


async def call_async(client: KneoClient, method: str) -> None:
    if method == "GET":
        await client.platform.runs.get("run-1")
    else:
        await client.platform.runs.create({"spec_id": "s"})


def call_blocking(client: SyncKneoClient, method: str) -> None:
    if method == "GET":
        client.platform.runs.get("run-1")
    else:
        client.platform.runs.create({"spec_id": "s"})


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("scheme", list(AuthScheme))
@pytest.mark.anyio
async def test_redirects_are_typed_errors_on_the_async_client(
    origin: str, scheme: AuthScheme, tmp_path: Path, anyio_backend: str
) -> None:
    with world(origin, tmp_path) as here, anyio.fail_after(LIMIT):
        async with KneoClient(here.profile(scheme)) as client:
            for sent, (status, _, location, method) in enumerate(here.cases(), 1):
                error: BaseException | None = None
                try:
                    await call_async(client, method)
                except KneoUnexpectedRedirectError as exc:
                    error = exc
                here.check(error, status, location, sent)


@pytest.mark.parametrize("origin", ORIGINS)
@pytest.mark.parametrize("scheme", list(AuthScheme))
def test_redirects_are_typed_errors_on_the_blocking_client(
    origin: str, scheme: AuthScheme, tmp_path: Path
) -> None:
    with world(origin, tmp_path) as here, SyncKneoClient(here.profile(scheme)) as client:
        for sent, (status, _, location, method) in enumerate(here.cases(), 1):
            error: Any = None
            try:
                call_blocking(client, method)
            except KneoUnexpectedRedirectError as exc:
                error = exc
            here.check(error, status, location, sent)


def test_redirect_figure(figure: Callable[[str, str], None]) -> None:
    if TALLY.calls == 0:
        pytest.skip("the redirect tests did not run (deselected)")
    figure(
        "T34",
        f"{len(STATUSES)} statuses x {len(LOCATION_FORMS)} Location forms x 2 methods x "
        f"{len(AuthScheme)} auth modes x {len(ORIGINS)} origins (http, https) x 3 drivers = "
        f"{TALLY.calls} calls: KneoUnexpectedRedirectError {TALLY.typed}/{TALLY.calls}, "
        f"connections or requests at origin B {TALLY.at_b}, credentialed requests at B "
        f"{TALLY.credentialed_at_b} (no follow mode exists)",
    )
    assert TALLY.typed == TALLY.calls
    assert TALLY.at_b == TALLY.credentialed_at_b == 0

"""``Emulator.rewrite``: every reply, faults applied, passes through the hook, and what the
hook returns is what every server delivers (in memory and over HTTP)."""

from __future__ import annotations

import dataclasses

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing import Emulator, Fault, Reply, memory_driver, serve_emulator
from kneo_proto import Request, Response
from tests.emulator.harness import Script


def gateway_id(request: Request, reply: Reply) -> Reply:
    """A gateway that stamps its own ``X-Request-ID`` on every answer."""
    response = reply.response
    headers = [(k, v) for k, v in response.headers if k.lower() != "x-request-id"]
    rewritten = Response(response.status, (*headers, ("X-Request-ID", "gw-1")), response.body)
    return dataclasses.replace(reply, response=rewritten)


def test_rewrite_sees_each_request_and_reply_after_faults_and_replaces_the_reply() -> None:
    seen: list[tuple[str, int]] = []

    def record(request: Request, reply: Reply) -> Reply:
        seen.append((request.target, reply.response.status))
        return gateway_id(request, reply)

    script = Script(Emulator(rewrite=record))
    script.emulator.faults.script("GET", "/v1/healthz", Fault.error(503))
    first = script.call("GET", "/v1/healthz", check=False)
    second = script.call("GET", "/v1/healthz", check=False)
    assert seen == [("/v1/healthz", 503), ("/v1/healthz", 200)]
    assert [first.response.status, second.response.status] == [503, 200]
    assert first.response.header("x-request-id") == "gw-1"
    assert script.emulator.counters.requests["/v1/healthz"] == 2
    script.emulator.rewrite = None
    assert script.call("GET", "/v1/healthz").response.header("x-request-id") != "gw-1"


def test_rewritten_replies_reach_clients_in_memory_and_over_http() -> None:
    emulator = Emulator(rewrite=gateway_id)
    profile = Profile(name="memory", url="https://emulator.test", api_key=emulator.api_key)
    with SyncKneoClient(profile, driver=memory_driver(emulator)) as client:
        assert client.platform.health.healthz.raw().request_id == "gw-1"
    with serve_emulator(emulator) as running, SyncKneoClient(running.profile()) as client:
        assert client.platform.health.healthz.raw().request_id == "gw-1"

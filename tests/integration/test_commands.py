"""The commands users type: ``python -m kneo_client.testing serve`` and the README's demo."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kneo_client import Profile, SyncKneoClient
from tests.integration.commands import clean_env, serve_command

pytestmark = pytest.mark.timeout(60)
DEMO_LIMIT = 45.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_prints_url_and_key_serves_and_stops_cleanly_on_sigint(tmp_path: Path) -> None:
    port = free_port()
    with serve_command(tmp_path, "--port", str(port)) as served:
        assert served.url == f"http://127.0.0.1:{port}"
        assert served.value("API key:") == served.api_key
        assert served.value("clock:").startswith("real time")
        profile = Profile(name="cli", url=served.url, api_key=served.api_key)
        with SyncKneoClient(profile) as client:
            assert client.platform.health.readyz().ok
            assert client.platform.runs.create({"spec_id": "my-spec"}).status == "queued"
        served.process.send_signal(signal.SIGINT)
        assert served.process.wait(10) == 0
        served.reader.join(10)
    assert any("SIGINT: stopping" in line for line in served.lines)
    assert not any("Traceback" in line for line in served.lines)


def test_serve_refuses_a_port_in_use_with_exit_code_1(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "kneo_client.testing", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            env=clean_env(tmp_path),
            timeout=30,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"cannot serve on 127.0.0.1:{port}: the port is in use; "
        "choose another --port, or --port 0 for a free one"
    ]


def run_demo(tmp_path: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kneo_client.demo"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path, **env),
        timeout=DEMO_LIMIT,
    )
    assert (done.returncode, done.stderr) == (0, "")
    return done.stdout


def test_demo_runs_the_workflow_on_an_in_process_emulator(tmp_path: Path) -> None:
    out = run_demo(tmp_path)
    assert "demo against the platform emulator at http://127.0.0.1:" in out
    for expected in (
        "ok=True",
        "a copy with 'kind: teleport' is valid=False:",
        "line 8, column 11:",
        ": paused_human_review after",
        "resumed with decision='approve': resumed",
        ": completed after",
        "run_completed",
        "human_task.resumed",
        "after 2 attempts, each with Idempotency-Key",
        "the emulator saw 2 requests and created the run once",
    ):
        assert expected in out
    assert out.rstrip().splitlines()[-1].startswith("done in")


def test_demo_runs_against_the_platform_named_by_kneo_url(tmp_path: Path) -> None:
    with serve_command(tmp_path, "--real-time") as served:
        out = run_demo(tmp_path, KNEO_URL=served.url, KNEO_API_KEY=served.api_key)
    assert f"kneo-client demo against {served.url}" in out
    assert "resumed with decision='approve': resumed" in out
    assert "skipped: injecting faults needs the emulator" in out

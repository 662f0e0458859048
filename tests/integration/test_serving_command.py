"""``python -m kneo_client.testing serve`` at a shell: the clock, the API key, bad options."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kneo_client import Profile, SyncKneoClient
from kneo_client.testing.__main__ import main
from tests.integration.commands import ROOT, clean_env, serve_command

pytestmark = pytest.mark.timeout(60)
SERVE = [sys.executable, "-m", "kneo_client.testing", "serve"]
RUN_LIMIT = 15.0  # my-spec takes 2.5 s of real time: 0.5 s queued, two 1 s steps


def readme_use_example() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("\n## Use\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None
    return match.group(1)


def test_serve_runs_in_real_time_by_default_so_a_run_completes_by_itself(tmp_path: Path) -> None:
    with serve_command(tmp_path) as served:
        assert served.value("clock:").startswith("real time (runs move by themselves")
        profile = Profile(name="cli", url=served.url, api_key=served.api_key)
        with SyncKneoClient(profile) as client:
            run = client.platform.runs.create({"spec_id": "my-spec"})
            started = time.monotonic()
            done = client.platform.runs.wait_for_completion(
                run.run_id, poll_interval=0.1, timeout=RUN_LIMIT
            )
    assert done.status == "completed"
    assert time.monotonic() - started < RUN_LIMIT


def test_the_readme_use_example_completes_against_a_default_serve(tmp_path: Path) -> None:
    with serve_command(tmp_path) as served:
        env = clean_env(tmp_path, KNEO_URL=served.url, KNEO_API_KEY=served.api_key)
        done = subprocess.run(
            [sys.executable, "-c", readme_use_example()],
            capture_output=True,
            text=True,
            env=env,
            timeout=RUN_LIMIT * 2,
        )
    assert (done.returncode, done.stderr) == (0, "")
    assert "run.created" in done.stdout


def test_serve_virtual_time_names_the_virtual_clock_and_runs_stay_queued(tmp_path: Path) -> None:
    with serve_command(tmp_path, "--virtual-time") as served:
        assert served.value("clock:").startswith("virtual (time stands still")
        profile = Profile(name="cli", url=served.url, api_key=served.api_key)
        with SyncKneoClient(profile) as client:
            run = client.platform.runs.create({"spec_id": "my-spec"})
            time.sleep(1.0)  # twice the real queueing time
            assert client.platform.runs.get(run.run_id).status == "queued"


def test_serve_uses_the_api_key_given(tmp_path: Path) -> None:
    with serve_command(tmp_path, "--api-key", "  dev-key-from-dotenv\n") as served:
        assert served.api_key == served.value("API key:") == "dev-key-from-dotenv"
        profile = Profile(name="cli", url=served.url, api_key="dev-key-from-dotenv")
        with SyncKneoClient(profile) as client:
            assert client.platform.runs.create({"spec_id": "my-spec"}).status == "queued"


def test_serve_refuses_a_port_out_of_range_in_one_line_with_exit_code_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [*SERVE, "--port", "99999"],
        capture_output=True,
        text=True,
        env=clean_env(tmp_path),
        timeout=30,
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "python -m kneo_client.testing serve: error: argument --port: "
        "'99999' is not a port from 0 to 65535 (try --help)"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "-1"], "argument --port: '-1' is not a port from 0 to 65535"),
        (["--port", "http"], "argument --port: 'http' is not a port from 0 to 65535"),
        (["--api-key", "my key"], "argument --api-key: API key contains whitespace"),
        (["--api-key", ""], "argument --api-key: API key is empty"),
        (["--api-key", "clé"], "argument --api-key: API key contains a non-ASCII character"),
        (["--real-time", "--virtual-time"], "not allowed with argument --real-time"),
    ],
)
def test_serve_refuses_a_bad_option_in_one_line(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", *args])
    assert exited.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert not any(key in lines[0] for key in ("my key", "clé"))  # never shows the key

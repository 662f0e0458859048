"""Run this project's commands as subprocesses, the way a user types them."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ROOT", "Served", "clean_env", "serve_command"]

ROOT = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment without any KNEO_* setting or user config, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KNEO_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    env["PYTHONWARNINGS"] = "error"
    return {**env, **extra}


@dataclass
class Served:
    """A running ``serve`` command and the lines it printed so far (stdout and stderr)."""

    process: subprocess.Popen[str]
    lines: list[str]
    reader: threading.Thread

    def value(self, prefix: str) -> str:
        """The rest of the first printed line (stripped) that starts with ``prefix``."""
        stripped = (line.strip() for line in self.lines)
        return next(line[len(prefix) :].strip() for line in stripped if line.startswith(prefix))

    @property
    def url(self) -> str:
        return self.value("export KNEO_URL=")

    @property
    def api_key(self) -> str:
        return self.value("export KNEO_API_KEY=")

    def wait_until_printed(self, marker: str, limit: float) -> None:
        deadline = time.monotonic() + limit
        while not any(marker in line for line in self.lines):
            if time.monotonic() > deadline or not self.reader.is_alive():
                raise TimeoutError(f"no {marker!r} within {limit} s; printed {self.lines}")
            time.sleep(0.02)


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)


@contextmanager
def serve_command(tmp_path: Path, *args: str, limit: float = 15.0) -> Iterator[Served]:
    """Start ``python -m kneo_client.testing serve *args``; yield once it printed its key.

    On exit the process is killed if still running, and always reaped.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "kneo_client.testing", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(tmp_path),
    )
    lines: list[str] = []
    reader = threading.Thread(target=_collect, args=(process, lines), daemon=True)
    reader.start()
    served = Served(process, lines, reader)
    try:
        served.wait_until_printed("export KNEO_API_KEY=", limit)
        yield served
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(limit)
        reader.join(limit)
        assert process.stdout is not None
        process.stdout.close()

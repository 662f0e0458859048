"""docs/dev/extending.md runs as written: every code block in a fresh interpreter, as a user
who copied it would run it (recipe 4 declares an endpoint, which must not reach this
process's registry), the async ones on asyncio and on trio. The environment is a user's with
no configuration: no ``KNEO_*`` variable, and empty home and config directories.

Also the example of docs/usage.md's "Bring your own httpx client" section, a fragment run
the way ``test_reference_examples`` runs the reference's fragments.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kneo_client import KneoClient
from kneo_client.testing import RunningEmulator, serve_emulator
from tests.client.test_reference_examples import wrap

pytestmark = pytest.mark.timeout(60)

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "dev" / "extending.md"
USAGE = DOCS / "usage.md"
# The reference's "full 10-recipe set", then the two this guide adds.
RECIPES = [
    "A custom retry policy",
    "A custom auth scheme",
    "Calling an endpoint kneo-client does not wrap yet",
    "Adding a new wrapped endpoint",
    "Custom logging",
    "A profile from a secrets manager",
    "Paginated iteration",
    "Custom terminal statuses",
    "The sync facade",
    "What not to extend",
    "Bring your own httpx client",
    "Drive `kneo_proto` from another HTTP stack",
    "Write a driver for another HTTP library",
]
ASYNC_RUN = 'anyio.run(main)  # or anyio.run(main, backend="trio")'


def blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def sections() -> dict[str, list[str]]:
    """Each ``## `` heading of the guide, and the Python blocks under it."""
    parts = re.split(r"^## (.+)$", GUIDE.read_text(encoding="utf-8"), flags=re.MULTILINE)
    return {heading: blocks(body) for heading, body in zip(parts[1::2], parts[2::2], strict=True)}


def examples() -> list[object]:
    """One run per block, two (asyncio, trio) for an async block; named by recipe number."""
    params: list[object] = []
    for heading, found in sections().items():
        for index, source in enumerate(found):
            for backend in ["asyncio", "trio"] if ASYNC_RUN in source else [None]:
                name = f"{heading.split('.')[0]}.{index}" + (f"-{backend}" if backend else "")
                params.append(pytest.param(source, backend, id=name))
    return params


def test_the_guide_has_the_recipes_the_reference_promises_and_three_more() -> None:
    assert list(sections()) == [f"{n}. {title}" for n, title in enumerate(RECIPES, start=1)]
    assert all(source.strip() for found in sections().values() for source in found)


def test_the_aiohttp_sketch_is_python() -> None:
    """The sketch of recipe 13 is not run (aiohttp is not a dependency) but must parse."""
    (sketch,) = re.findall(r"```py\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert "async def exchange(self, send, guard)" in sketch
    ast.parse(sketch)


def test_the_guide_links_to_files_that_exist() -> None:
    targets = re.findall(r"\]\(([^)#]+)", GUIDE.read_text(encoding="utf-8"))
    assert "../embedding.md" in targets
    assert [t for t in targets if "://" not in t and not (GUIDE.parent / t).exists()] == []


@pytest.mark.parametrize(("source", "backend"), examples())
def test_extending_example_runs(source: str, backend: str | None, tmp_path: Path) -> None:
    if backend == "trio":
        source = source.replace(ASYNC_RUN, 'anyio.run(main, backend="trio")')
    env = {name: value for name, value in os.environ.items() if not name.startswith("KNEO_")}
    env |= {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", source],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert done.returncode == 0, done.stderr


# -- docs/usage.md ---------------------------------------------------------------------------


@pytest.fixture
def running() -> Iterator[RunningEmulator]:
    with serve_emulator() as served:
        yield served


@pytest.mark.anyio
async def test_usage_bring_your_own_httpx_client_example(running: RunningEmulator) -> None:
    section = USAGE.read_text(encoding="utf-8").split("\n## Bring your own httpx client\n")[1]
    (fragment,) = blocks(section.split("\n## ", 1)[0])
    result = await wrap(fragment, "profile", KneoClient=KneoClient)(running.profile())
    assert result is not None
    assert result["ready"].ok
    assert result["shared"].is_closed

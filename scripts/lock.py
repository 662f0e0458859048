"""Pin the test and dev environments to pyproject.toml's requirements, or check the pins fit.

    python3 scripts/lock.py                         refresh requirements/dev.txt and test.txt
    python3 scripts/lock.py --upgrade               ... moving every pin to its newest release
    python3 scripts/lock.py --upgrade-package NAME  ... moving NAME's pin only
    python3 scripts/lock.py --check                 offline: fail if a pin no longer fits
    pip freeze | python scripts/lock.py --diff FILE  which installed versions FILE does not pin

The two files are pip constraints (``pip install -e '.[test]' -c requirements/test.txt``),
resolved once for every Python kneo-client supports (``uv pip compile --universal``). A
refresh keeps each pin that still satisfies pyproject.toml, so adding a dependency changes
only the lines it needs. ``dev.txt`` is resolved first (``.[dev]`` holds ``.[test]`` and
``.[bench]``) and ``test.txt`` within its pins, so the two agree. uv is pinned below and
installed into ``.venv-lock/`` on first use. ``--check`` (run by ``.ci/run``) needs only
``packaging``, and no network: every requirement of the extra (and of the runtime) must have
a pin that satisfies it, and the two files must agree on every version.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
import venv
from pathlib import Path
from typing import Any

# The resolver's own version (a newer uv may order or annotate differently), and what
# ``--check`` needs, installed together into .venv-lock/.
TOOLS = ("uv==0.13.10", "packaging==26.4")
ROOT = Path(__file__).resolve().parent.parent
TOOL = ROOT / ".venv-lock"
# (file, extra, resolved within): dev first, then test inside dev's pins.
LOCKS = (
    ("requirements/dev.txt", "dev", None),
    ("requirements/test.txt", "test", "requirements/dev.txt"),
)
SELF = "kneo-client"


def tools() -> Path:
    """The ``.venv-lock/`` holding ``TOOLS``, (re)built when its uv is missing or another."""
    binary = TOOL / "bin" / "uv"
    if binary.exists():
        shown = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        if f"uv=={''.join(shown.split()[1:2])}" in TOOLS:
            return TOOL
    venv.create(TOOL, with_pip=True, clear=True)
    pip = [str(TOOL / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--disable-pip-version-check", *TOOLS], check=True)
    return TOOL


def refresh(uv_args: list[str]) -> Path:
    """Resolve every lock file again, passing ``uv_args`` (e.g. ``--upgrade``) to uv.

    Returns:
        The Python of ``.venv-lock/``, which can run ``--check``.
    """
    binary = tools() / "bin" / "uv"
    for path, extra, within in LOCKS:
        command = [str(binary), "pip", "compile", "pyproject.toml", "--universal", "--quiet"]
        command += ["--extra", extra, "--output-file", path]
        command += ["--custom-compile-command", "python3 scripts/lock.py"]
        command += ["--annotation-style", "line"]
        command += ["--constraints", within] if within else []
        subprocess.run([*command, *uv_args], check=True, cwd=ROOT)
        print(f"wrote {path}")
    return TOOL / "bin" / "python"


def wanted(project: dict[str, Any], extra: str) -> list[str]:
    """The runtime requirements plus those of ``extra``, with ``kneo-client[...]`` expanded."""
    from packaging.requirements import Requirement

    found = list(project["dependencies"])
    todo, seen = [extra], set()
    while todo:
        name = todo.pop()
        seen.add(name)
        for line in project["optional-dependencies"][name]:
            requirement = Requirement(line)
            if requirement.name == SELF:
                todo += sorted(requirement.extras - seen)
            else:
                found.append(line)
    return found


def pins(path: Path) -> dict[str, str]:
    """The version pinned for each (normalized) name in a lock file."""
    return pins_of(path.read_text().splitlines())


def pins_of(lines: list[str]) -> dict[str, str]:
    """The version pinned for each (normalized) name in lock file or ``pip freeze`` lines."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned: dict[str, str] = {}
    for line in lines:
        line = line.split(" #", 1)[0].strip()  # uv's "# via ..." annotations
        if line and not line.startswith(("#", "-")):
            requirement = Requirement(line)
            for spec in requirement.specifier:  # one "==": other lines pin nothing
                pinned[canonicalize_name(requirement.name)] = spec.version
    return pinned


def problems() -> list[str]:
    """Why the lock files no longer fit pyproject.toml (empty when they do)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found: list[str] = []
    locked = {path: pins(ROOT / path) for path, _, _ in LOCKS}
    for path, extra, within in LOCKS:
        for line in wanted(project, extra):
            requirement = Requirement(line)
            version = locked[path].get(canonicalize_name(requirement.name))
            if version is None:
                found.append(f"{path}: no pin for {line!r} (.[{extra}])")
            elif not requirement.specifier.contains(version, prereleases=True):
                found.append(f"{path}: {requirement.name}=={version} does not satisfy {line!r}")
        if within is not None:
            for name, version in locked[path].items():
                if locked[within].get(name, version) != version:
                    found.append(f"{path}: {name}=={version}, {within} has {locked[within][name]}")
    return found


def diff(path: Path, freeze: list[str]) -> list[str]:
    """The packages of a ``pip freeze`` whose version differs from the one ``path`` pins."""
    locked = pins(path)
    installed = pins_of(freeze)
    return [
        f"{name} {version} ({'pinned ' + locked[name] if name in locked else 'not pinned'})"
        for name, version in sorted(installed.items())
        if locked.get(name) != version
    ]


def main(args: list[str]) -> int:
    """Refresh the lock files and check them, or with ``--check`` only check them."""
    if args[:1] == ["--diff"]:
        newer = diff(ROOT / args[1], sys.stdin.read().splitlines())
        print(f"Differs from {args[1]}: {', '.join(newer) or 'nothing'}")
        return 0
    if args != ["--check"]:
        python = refresh(args)
        return subprocess.run([python, __file__, "--check"], check=False).returncode
    if stale := problems():
        print("The lock files do not fit pyproject.toml; run: python3 scripts/lock.py")
        print("\n".join(f"  {problem}" for problem in stale))
        return 1
    print("requirements/*.txt fit pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

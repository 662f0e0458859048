"""The client openapi-python-client generates from the OpenAPI document, made at run time.

``generated_client()`` runs the generator (the ``openapi-python-client`` package of the
``bench`` extra) on ``spec/kneo-v1.openapi.yaml`` into a temporary directory, imports the
package from there, and removes both again afterwards: nothing generated is ever written
into the repository. The generator runs with ``--meta none`` (a bare package, no project
files around it) and a config file that names the package and turns the post-hooks off
(they would run ruff, which need not be on ``PATH``; formatting does not change speed).

Every ``operationId`` of the document is checked for a module of its own in the generated
``api`` package; those without one are listed in ``Generated.missing`` and in the report.
The benchmark needs ``get_run`` and ``list_audit_events``: without them it stops.
The generated package is imported dynamically, so everything taken from it is ``Any``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["GenerationError", "Generated", "generated_client", "unavailable_reason"]

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "spec" / "kneo-v1.openapi.yaml"
PACKAGE = "kneo_bench_generated"
CONFIG = f"package_name_override: {PACKAGE}\npost_hooks: []\n"
NEEDED = ("get_run", "list_audit_events")
GENERATE_SECONDS = 120.0


class GenerationError(Exception):
    """The generator failed, or left out an operation the benchmark needs."""


@dataclass(frozen=True, slots=True)
class Generated:
    """The imported generated package and what the generator reported.

    Attributes:
        version: openapi-python-client's version.
        package: The generated package (``AuthenticatedClient`` at its top).
        operations: The module of each generated operation, by ``operationId``.
        missing: ``operationId``s of the document that produced no module.
        warnings: What the generator printed about problems, if anything.
        seconds: How long generating took.
    """

    version: str
    package: Any
    operations: dict[str, Any]
    missing: tuple[str, ...]
    warnings: str
    seconds: float

    def client(self, url: str, api_key: str, max_connections: int) -> Any:
        """A new ``AuthenticatedClient`` (one per event loop: its httpx clients are lazy)."""
        import httpx

        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        return self.package.AuthenticatedClient(
            base_url=url, token=api_key, httpx_args={"limits": limits}
        )


def unavailable_reason() -> str | None:
    """Why the generated client cannot be measured here, or None when it can."""
    for module, dist in (("openapi_python_client", "openapi-python-client"), ("httpx", "httpx")):
        if importlib.util.find_spec(module) is None:
            return f"{dist} is not installed (pip install -e '.[bench]')"
    return None


def _operation_ids(spec: Path) -> list[str]:
    return re.findall(r"^\s+operationId:\s*['\"]?([\w-]+)", spec.read_text("utf-8"), re.M)


def _generate(out: Path) -> tuple[str, float]:
    config = out.parent / "config.yaml"
    config.write_text(CONFIG, "utf-8")
    command = [
        *(sys.executable, "-m", "openapi_python_client", "generate"),
        *("--path", str(SPEC), "--meta", "none"),
        *("--output-path", str(out), "--config", str(config)),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=GENERATE_SECONDS, check=False
    )
    seconds = time.perf_counter() - started
    output = (done.stdout + done.stderr).strip()
    if done.returncode != 0 or not (out / "__init__.py").exists():
        raise GenerationError(f"openapi-python-client failed ({done.returncode}): {output[-2000:]}")
    # Its only line when all is well is "Generating <path>"; anything else is a warning.
    lines = [line for line in output.splitlines() if not line.startswith("Generating ")]
    return "\n".join(lines).strip(), seconds


def _import(root: Path) -> tuple[Any, dict[str, Any]]:
    package = importlib.import_module(PACKAGE)
    operations = {}
    for path in sorted((root / PACKAGE / "api").glob("*/*.py")):
        if path.stem != "__init__":
            module = f"{PACKAGE}.api.{path.parent.name}.{path.stem}"
            operations[path.stem] = importlib.import_module(module)
    return package, operations


def _forget(package: str) -> None:
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        del sys.modules[name]


@contextlib.contextmanager
def generated_client() -> Iterator[Generated]:
    """Generate, import and yield the client; delete it all on leaving.

    Raises:
        GenerationError: when the generator fails or leaves out ``get_run`` or
            ``list_audit_events``.
    """
    with tempfile.TemporaryDirectory(prefix="kneo-bench-generated-") as tmp:
        root = Path(tmp)
        warnings, seconds = _generate(root / PACKAGE)
        sys.path.insert(0, tmp)
        try:
            package, operations = _import(root)
            missing = tuple(op for op in _operation_ids(SPEC) if op not in operations)
            if lost := [op for op in NEEDED if op in missing]:
                raise GenerationError(f"no generated module for {', '.join(lost)}: {warnings}")
            yield Generated(
                version=importlib.metadata.version("openapi-python-client"),
                package=package,
                operations=operations,
                missing=missing,
                warnings=warnings,
                seconds=seconds,
            )
        finally:
            sys.path.remove(tmp)
            _forget(PACKAGE)

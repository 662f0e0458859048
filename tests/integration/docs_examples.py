"""The Python examples of the "Serving the emulator" section of docs/emulator.md."""

from __future__ import annotations

import re

from tests.integration.commands import ROOT

__all__ = ["DOC", "serving_examples"]

DOC = ROOT / "docs" / "emulator.md"
SECTION = "## Serving the emulator"


def serving_examples() -> list[str]:
    """Every ```python block of the section, in order."""
    text = DOC.read_text(encoding="utf-8").split(SECTION, 1)[1]
    text = text.split("\n## ", 1)[0]  # up to the next top-level section, if any
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)

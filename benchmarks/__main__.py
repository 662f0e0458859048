"""kneo-client's benchmark suite: ``python -m benchmarks`` from the repository root.

Measures, in one run against one canned loopback server, the same calls through the
standard library, raw httpcore2, httpx, the client openapi-python-client generates, and
kneo-client (blocking, asyncio, trio), and prints a markdown report with the speed targets
met or missed. See benchmarks/README.md for what each figure means.

    python -m benchmarks                   # full run, about 3 minutes: writes RESULTS.md
    python -m benchmarks --quick           # smoke run for CI, well under a minute: stdout
    python -m benchmarks --output PATH     # write the report to PATH as well

It exits 0 whatever the timings are; it exits 1 when a case does not end as it should (a
wrong result, an unexpected number of requests, a failed generator or start-up script).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.generated_client import GenerationError
from benchmarks.report import markdown
from benchmarks.sampling import WrongResult
from benchmarks.suite import DEFAULT, QUICK, run_suite

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    """Run the suite, print the report and write it where it belongs."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke run)")
    parser.add_argument(
        "--output",
        type=Path,
        help=f"write the report here (default: {RESULTS.name} for a full run, none for --quick)",
    )
    args = parser.parse_args(argv)
    try:
        figures = run_suite(QUICK if args.quick else DEFAULT)
    except (WrongResult, GenerationError) as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        return 1
    report = markdown(figures, "quick" if args.quick else "full")
    print(report)
    output = args.output or (None if args.quick else RESULTS)
    if output is not None:
        output.write_text(report, "utf-8")
        print(f"written to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m kneo_client.testing serve``: run the platform emulator until interrupted.

Prints the URL and the API keys, and how to point kneo-client (or anything reading
``KNEO_URL`` / ``KNEO_API_KEY``) at it; Ctrl-C or SIGTERM stops it gracefully (exit code 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

import anyio

from kneo_client.testing._clock import SystemClock, VirtualClock
from kneo_client.testing._emulator import Emulator
from kneo_client.testing._server import RunningEmulator, serve_emulator_async

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m kneo_client.testing",
        description="A local, stateful emulator of the Kneo Agent Platform /v1 API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the emulator over HTTP until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port to listen on (0: a free one)")
    serve.add_argument(
        "--real-time",
        action="store_true",
        help="run on the real clock (runs progress by themselves) instead of a virtual one",
    )
    return parser


def _announce(running: RunningEmulator, real_time: bool) -> None:
    clock = "real-time clock" if real_time else "virtual clock"
    print(f"kneo emulator serving on {running.url} ({clock}); Ctrl-C stops it")
    print(f"  API key:           {running.api_key}")
    print(f"  read-only API key: {running.read_only_key}")
    print("Point kneo-client at it:")
    print(f"  export KNEO_URL={running.url}")
    print(f"  export KNEO_API_KEY={running.api_key}", flush=True)


async def _serve(host: str, port: int, real_time: bool) -> None:
    emulator = Emulator(clock=SystemClock() if real_time else VirtualClock())
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_emulator_async(emulator, host=host, port=port) as running:
            _announce(running, real_time)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: stopping", flush=True)
                break


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        anyio.run(_serve, args.host, args.port, args.real_time)
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

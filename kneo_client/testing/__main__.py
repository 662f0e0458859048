"""``python -m kneo_client.testing serve``: run the platform emulator until interrupted.

Prints the URL, the clock and the API keys, and how to point kneo-client (or anything reading
``KNEO_URL`` / ``KNEO_API_KEY``) at it; Ctrl-C or SIGTERM stops it gracefully (exit code 0).
Runs move in real time by default, as someone trying the API from a shell expects;
``--virtual-time`` stops the clock, as the in-process emulator and the pytest fixtures have it.
A bad option is one line on stderr and exit code 2; an address it cannot listen on, exit code 1.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
from collections.abc import Sequence
from typing import NoReturn

import anyio

from kneo_client.testing._clock import SystemClock, VirtualClock
from kneo_client.testing._emulator import Emulator
from kneo_client.testing._runs import RunTiming
from kneo_client.testing._server import RunningEmulator, serve_emulator_async
from kneo_proto import normalize_api_key

__all__ = ["main"]

MAX_PORT = 65_535


class _Parser(argparse.ArgumentParser):
    """Reports a bad command line in one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (try --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port from 0 to {MAX_PORT}")
    return port


def _api_key(text: str) -> str:
    # The check every kneo-client profile applies: a key it would refuse could never be used.
    try:
        return normalize_api_key(text)
    except ValueError as exc:  # the message names the problem, never the key
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m kneo_client.testing",
        description="A local, stateful emulator of the Kneo Agent Platform /v1 API.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the emulator over HTTP until interrupted")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=_port, default=0, help="port to listen on (0: a free one)")
    serve.add_argument(
        "--api-key", type=_api_key, metavar="KEY", help="the full-access key (default: a new one)"
    )
    clocks = serve.add_mutually_exclusive_group()
    clocks.add_argument(
        "--virtual-time",
        action="store_true",
        help="stop the clock: runs stay queued (the default is real time)",
    )
    clocks.add_argument(
        "--real-time",
        dest="virtual_time",
        action="store_false",
        help="run on the real clock, runs moving by themselves (the default)",
    )
    return parser


def _clock_line(virtual_time: bool) -> str:
    if virtual_time:
        return "virtual (time stands still, so runs stay queued)"
    timing = RunTiming()
    pace = f"{timing.queued_seconds:g} s queued, then {timing.step_seconds:g} s a step"
    return f"real time (runs move by themselves: {pace})"


def _announce(running: RunningEmulator, virtual_time: bool) -> None:
    print(f"kneo emulator serving on {running.url}; Ctrl-C stops it")
    print(f"  clock:             {_clock_line(virtual_time)}")
    print(f"  API key:           {running.api_key}")
    print(f"  read-only API key: {running.read_only_key}")
    print("Point kneo-client at it:")
    print(f"  export KNEO_URL={running.url}")
    print(f"  export KNEO_API_KEY={running.api_key}", flush=True)


async def _serve(emulator: Emulator, host: str, port: int, virtual_time: bool) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with serve_emulator_async(emulator, host=host, port=port) as running:
            _announce(running, virtual_time)
            async for signum in signals:
                print(f"{signal.Signals(signum).name}: stopping", flush=True)
                break


def _cannot_listen(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use; choose another --port, or --port 0 for a free one"
    return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    clock = VirtualClock() if args.virtual_time else SystemClock()
    emulator = Emulator(clock=clock, api_key=args.api_key)
    try:
        anyio.run(_serve, emulator, args.host, args.port, args.virtual_time)
    except OSError as exc:
        print(f"cannot serve on {args.host}:{args.port}: {_cannot_listen(exc)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

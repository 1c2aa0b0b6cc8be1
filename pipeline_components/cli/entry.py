"""The ``runway`` entry point: parse the command line, run the command, turn a ``RunwayError`` into exit status 2."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from pipeline_components.cli.parsers import build_parser
from pipeline_components.errors import RunwayError
from pipeline_components.settings import Settings


class Terminated(KeyboardInterrupt):
    """SIGTERM (a timeout, a supervisor, ``kill``): handled like Ctrl-C, so every process a command started is
    stopped with it (``runway run``'s Airflow run and its Execution API) instead of being left behind."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    """Run ``runway ARGV``; return the exit status.

    0, 2 with ``runway: error: ...`` on stderr, 130 on Ctrl-C, 143 on SIGTERM.
    """
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        args.func(args, Settings.from_env())
    except RunwayError as err:
        print(f"runway: error: {err}", file=sys.stderr)
        return 2
    except Terminated:
        return 143
    except KeyboardInterrupt:
        return 130
    return 0

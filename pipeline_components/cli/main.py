"""The ``runway`` entry point: parse the command line, run the command, turn a ``RunwayError`` into exit status 2."""

from __future__ import annotations

import sys

from pipeline_components.cli.parsers import build_parser
from pipeline_components.errors import RunwayError
from pipeline_components.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Run ``runway ARGV``; return the exit status (0, 2 with ``runway: error: ...`` on stderr, 130 on Ctrl-C)."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args, Settings.from_env())
    except RunwayError as err:
        print(f"runway: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0

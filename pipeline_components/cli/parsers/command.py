"""One way to declare a ``runway`` command: its name, a one-line help, a description that reads like documentation."""

from __future__ import annotations

import argparse
import textwrap
from collections.abc import Callable
from typing import Any


def add_command(
    sub: Any, name: str, *, help: str, description: str | None = None, func: Callable[..., None] | None = None
) -> argparse.ArgumentParser:
    """Register ``name`` on the subparsers ``sub``; ``description`` is dedented and keeps its line breaks.

    Args:
        sub: what ``ArgumentParser.add_subparsers`` returned.
        name: the command's name.
        help: one line for the parent's list of commands.
        description: the command's own ``--help`` text (default: ``help``).
        func: the command's body (``cli/commands/``), called with the parsed arguments and the settings.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=textwrap.dedent(description or help).strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if func is not None:
        parser.set_defaults(func=func)
    return parser

"""The `runway` command line: every command documents itself and reaches its body in cli/commands/."""

from __future__ import annotations

import argparse

import pytest

from pipeline_components.cli.parsers import build_parser


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every leaf command path, e.g. ("fleet", "promote")."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*prefix, name))
    return found or [prefix]


COMMANDS = _commands(build_parser())


def test_every_command_of_the_readme_is_there() -> None:
    names = {" ".join(path) for path in COMMANDS}
    expected = {
        "data prepare", "schema", "compile", "run", "params", "report", "predict", "serve", "query",
        "fleet up", "fleet down", "fleet status", "fleet rollout", "fleet promote", "fleet rollback",
        "model inspect", "train manifests", "runtime", "airflow",
    }  # fmt: skip
    assert expected <= names


@pytest.mark.parametrize("path", [p for p in COMMANDS if p != ("airflow",)], ids=" ".join)
def test_every_command_has_help_and_a_body(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*path, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: runway {' '.join(path)}") and len(text.splitlines()) > 3
    parser = build_parser()
    for action in parser._actions:  # the leaf's default func is a command body
        if isinstance(action, argparse._SubParsersAction):
            sub = action.choices[path[0]]
            for name in path[1:]:
                sub = next(a for a in sub._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
            func = sub.get_default("func")
            assert callable(func) and func.__module__.startswith("pipeline_components.cli.commands.")

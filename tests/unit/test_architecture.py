"""The shape of the package, checked on every run: small modules, no import cycle, the layers' rules.

A newcomer finds each stage from the folder names because nothing imports "upward": the runtime side never imports
the orchestrator side (they meet in ``boundary.py``), the client never imports the fleet, DAG files import no
TensorFlow (``tests/dags``). Imports inside functions count too: a lazy import that closes a loop is still a loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline_components.settings import CHECKOUT

PACKAGE = CHECKOUT / "pipeline_components"
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = path.relative_to(CHECKOUT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The project's modules that ``name`` imports, anywhere in its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            submodules = [f"{base}.{alias.name}" for alias in node.names]
            # ``from package import module`` names the module; ``from package import name`` the package itself.
            targets = submodules + ([] if all(module in MODULES for module in submodules) else [base])
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


GRAPH = {name: _imports(name) for name in MODULES}


def _reaches(start: str, goal: str) -> bool:
    seen, todo = set(), [start]
    while todo:
        current = todo.pop()
        if current == goal:
            return True
        if current not in seen:
            seen.add(current)
            todo.extend(GRAPH[current])
    return False


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: lines for name, lines in sizes.items() if lines > MAX_LINES} == {}


def test_no_import_cycle() -> None:
    """No module reaches itself through imports (a package's ``__init__`` re-exporting its modules excepted)."""
    cycles = []
    for name, imported in GRAPH.items():
        for target in imported:
            if target.startswith(name + ".") and MODULES[name].name == "__init__.py":
                continue  # a package's face re-exports its own modules
            if _reaches(target, name) and not (MODULES[target].name == "__init__.py" and name.startswith(target + ".")):
                cycles.append(f"{name} -> {target}")
    assert cycles == []


@pytest.mark.parametrize(
    ("lower", "upper", "why"),
    [
        (
            "pipeline_components.runtime",
            "pipeline_components.orchestration",
            "the runtime never imports Airflow's side",
        ),
        ("pipeline_components.components", "pipeline_components.orchestration", "TFX components run in the runtime"),
        ("pipeline_components.client", "pipeline_components.fleet", "downstream apps get the client alone"),
        ("pipeline_components.serving", "pipeline_components.fleet", "the model server knows no fleet"),
        ("pipeline_components.components", "pipeline_components.runtime", "stages sit below the node runner"),
        ("pipeline_components.fleet", "pipeline_components.cli", "the command line is the top layer"),
        ("pipeline_components.orchestration", "pipeline_components.cli", "the command line is the top layer"),
        ("pipeline_components.boundary", "pipeline_components.orchestration", "the boundary imports neither side"),
        ("pipeline_components.boundary", "pipeline_components.runtime", "the boundary imports neither side"),
    ],
)
def test_layers(lower: str, upper: str, why: str) -> None:
    offending = sorted(
        f"{name} -> {target}"
        for name, imported in GRAPH.items()
        if name == lower or name.startswith(lower + ".")
        for target in imported
        if target == upper or target.startswith(upper + ".")
    )
    assert offending == [], why

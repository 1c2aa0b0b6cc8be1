"""Every command prints every configuration error, each naming its key (not only the first line of the message)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline_components.boundary import error_message
from pipeline_components.settings import Settings
from tests.conftest import CONFIGS
from tests.helpers import missing, runtime_available, runway

# Three mistakes in three sections of a copy of the flights configuration, and the key each message must name.
MISTAKES = {
    "data.window_spans": ("data", "window_spans", 0),
    "model.train_stepz": ("model", "train_stepz", 10),
    "evaluation.lower_bound": ("evaluation", "lower_bound", "high"),
}


def test_an_error_message_is_every_line_from_its_error_line_on() -> None:
    lines = ["WARNING noise", "error: x.yaml is not a valid pipeline configuration:", "  - a.b: bad", "  - c: worse"]
    assert error_message(lines) == "x.yaml is not a valid pipeline configuration:\n  - a.b: bad\n  - c: worse"
    assert error_message(["error: first", "error: last one"]) == "last one"
    assert error_message(["no error here"]) is None


@pytest.fixture
def broken(tmp_path: Path) -> Settings:
    raw = yaml.safe_load((CONFIGS / "flights.yaml").read_text())
    raw["name"] = "broken"
    raw["schema_file"] = str((CONFIGS / raw["schema_file"]).resolve())
    for section, key, value in MISTAKES.values():
        raw[section][key] = value
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "broken.yaml").write_text(yaml.safe_dump(raw))
    return Settings.from_env({"RUNWAY_HOME": str(tmp_path / "home"), "RUNWAY_CONFIG_DIR": str(configs)})


@pytest.mark.runtime
@pytest.mark.parametrize(
    "command", [pytest.param(["compile", "broken"], id="compile"), pytest.param(["schema", "broken"], id="schema")]
)
def test_runtime_commands_print_every_error_naming_its_key(broken: Settings, command: list[str]) -> None:
    if not runtime_available(broken):
        missing("the pipeline runtime environment (.venv-runtime) is not installed; run `make setup`")
    result = runway(broken, *command, timeout=120)
    assert result.returncode == 2
    assert "is not a valid pipeline configuration:" in result.stderr
    for key in MISTAKES:
        assert f"  - {key}:" in result.stderr, f"{key} is not named in:\n{result.stderr}"

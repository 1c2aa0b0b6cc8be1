from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline_components.config import find_pipeline_configs, load_pipeline_config
from pipeline_components.errors import ConfigError
from tests.conftest import CONFIGS


@pytest.mark.parametrize("name", ["flights", "penguins"])
def test_shipped_configs_load(name: str) -> None:
    config = load_pipeline_config(CONFIGS / f"{name}.yaml")
    assert config.name == name
    assert config.schema_path.is_file()
    assert config.label.column not in config.features.all


def test_find_pipeline_configs_lists_both_examples() -> None:
    assert {"flights", "penguins"} <= set(find_pipeline_configs(CONFIGS))


def _write(tmp_path: Path, **changes: object) -> Path:
    raw = yaml.safe_load((CONFIGS / "flights.yaml").read_text())
    raw["schema_file"] = str((CONFIGS / raw["schema_file"]).resolve())
    for dotted, value in changes.items():
        target = raw
        *parents, leaf = dotted.split("__")
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(leaf)
        else:
            target[leaf] = value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"data__span_pattern": "span-*/*.csv"}, "data.span_pattern", id="no-span-placeholder"),
        pytest.param({"label__column": "distance"}, "also listed as a feature", id="label-is-a-feature"),
        pytest.param({"label__kind": "multiclass"}, "at least three", id="multiclass-without-classes"),
        pytest.param({"model__train_steps": 0}, "model.train_steps", id="zero-steps"),
        pytest.param({"evaluation": None}, "evaluation", id="missing-section"),
        pytest.param({"surprise": 1}, "surprise", id="unknown-key"),
        pytest.param({"name": "Bad Name"}, "name", id="bad-name"),
        pytest.param({"schema_file": "nope/schema.pbtxt"}, "runway schema", id="missing-schema"),
    ],
)
def test_invalid_config_names_the_problem(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_pipeline_config(_write(tmp_path, **changes))


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_pipeline_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_pipeline_config(bad)


def test_overrides_are_validated() -> None:
    config = load_pipeline_config(CONFIGS / "flights.yaml")
    assert config.with_overrides({"model.train_steps": 50}).model.train_steps == 50
    with pytest.raises(ConfigError, match=r"unknown configuration key 'model\.nope'"):
        config.with_overrides({"model.nope": 1})
    with pytest.raises(ConfigError, match=r"model\.train_steps"):
        config.with_overrides({"model.train_steps": -1})


@pytest.mark.parametrize(
    ("pattern", "span", "expected"),
    [
        pytest.param("span-2013-{SPAN:2}/*.csv", 3, "span-2013-03/*.csv", id="width"),
        pytest.param("span-{SPAN}/*.csv", 2009, "span-2009/*.csv", id="plain"),
        pytest.param("span-2013-{SPAN:2}/*.csv", None, "span-2013-*/*.csv", id="every-span"),
    ],
)
def test_fill_span(pattern: str, span: int | None, expected: str) -> None:
    from pipeline_components.config import fill_span

    assert fill_span(pattern, span) == expected


def test_span_folder_regex_reads_the_span_number() -> None:
    from pipeline_components.config import span_folder_regex

    regex = span_folder_regex("span-2013-{SPAN:2}/*.csv")
    assert regex.match("span-2013-11").group("span") == "11"  # type: ignore[union-attr]
    assert regex.match(".span-2013-03.tmp") is None and regex.match("span-2014-01") is None

"""The run's pre-flight check: each mistake in a span or a configuration is refused by name, before any node."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import yaml

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.data.preflight import preflight, schema_types
from pipeline_components.errors import ConfigError
from tests.conftest import CONFIGS

# Real rows of the palmerpenguins data (penguins.csv), as `runway data prepare penguins` writes them.
HEADER = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "island", "sex", "species"]
ROWS = [
    ["39.1", "18.7", "181.0", "3750.0", "Torgersen", "male", "0"],
    ["39.5", "17.4", "186.0", "3800.0", "Torgersen", "female", "0"],
    ["46.5", "17.9", "192.0", "3500.0", "Dream", "female", "1"],
    ["46.1", "13.2", "211.0", "4500.0", "Biscoe", "female", "2"],
]


@pytest.fixture
def penguins(tmp_path: Path) -> PipelineConfig:
    """A copy of the penguins configuration, its schema and suite, in a folder the test may spoil."""
    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS / "schemas" / "penguins", configs / "schemas" / "penguins")
    shutil.copytree(CONFIGS / "expectations", configs / "expectations")
    shutil.copy(CONFIGS / "penguins.yaml", configs / "penguins.yaml")
    return load_pipeline_config(configs / "penguins.yaml")


def _span(data_dir: Path, header: list[str], rows: list[list[str]], span: int = 2009) -> Path:
    path = data_dir / "penguins" / f"span-{span}" / "penguins.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def _refusal(config: PipelineConfig, data_dir: Path) -> str:
    with pytest.raises(ConfigError) as refused:
        preflight(config, data_dir, None, [2009])
    return str(refused.value)


def test_a_span_that_fits_passes(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", HEADER, ROWS)
    assert preflight(penguins, tmp_path / "data", None, [2009]) == [
        "span 2009: 1 file(s) fit the configuration, schema and suite of penguins"
    ]


def test_a_missing_feature_is_named_with_its_key(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", HEADER[:5] + HEADER[6:], [row[:5] + row[6:] for row in ROWS])
    message = _refusal(penguins, tmp_path / "data")
    assert message.splitlines()[0].startswith("penguins, span 2009: column 'sex' (features.categorical) is missing")
    assert "runway schema penguins" in message


def test_a_new_column_is_named(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", [*HEADER, "comments"], [[*row, "ok"] for row in ROWS])
    message = _refusal(penguins, tmp_path / "data")
    assert "column 'comments' of span-2009/penguins.csv is not in the configuration" in message
    assert "features.numeric or features.categorical" in message


def test_a_label_of_text_where_indices_are_expected_says_what_to_set(penguins: PipelineConfig, tmp_path: Path) -> None:
    names = {"0": "Adelie", "1": "Chinstrap", "2": "Gentoo"}
    _span(tmp_path / "data", HEADER, [[*row[:6], names[row[6]]] for row in ROWS])
    message = _refusal(penguins, tmp_path / "data")
    assert "label 'species' holds text ('Adelie', 'Chinstrap', 'Gentoo'; first on line 2 of penguins.csv)" in message
    assert "set label.values: name and label.classes" in message


def test_a_class_name_the_configuration_does_not_list_is_named(penguins: PipelineConfig, tmp_path: Path) -> None:
    by_name = penguins.with_overrides({"label.values": "name"})
    names = {"0": "Adelie", "1": "Chinstrap", "2": "Macaroni"}
    _span(tmp_path / "data", HEADER, [[*row[:6], names[row[6]]] for row in ROWS])
    message = _refusal(by_name, tmp_path / "data")
    assert "holds 'Macaroni' (line 5 of penguins.csv), not one of label.classes" in message


def test_text_in_a_numeric_feature_is_named(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", HEADER, [ROWS[0], ["39,5", *ROWS[1][1:]], *ROWS[2:]])
    message = _refusal(penguins, tmp_path / "data")
    assert "column 'bill_length_mm' (features.numeric) holds text ('39,5' on line 3 of penguins.csv)" in message


def test_a_missing_suite_is_named_with_its_key(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", HEADER, ROWS)
    penguins.expectations_path.unlink()
    message = _refusal(penguins, tmp_path / "data")
    assert message.splitlines()[0].startswith("penguins, span 2009: validation.expectations_file: the expectation")


def test_a_schema_that_does_not_fit_the_configuration_is_named(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", HEADER, ROWS)
    text = penguins.schema_path.read_text()
    start = text.index('feature {\n  name: "sex"')
    penguins.schema_path.write_text(text[:start] + text[text.index("feature {", start + 1) :])
    message = _refusal(penguins, tmp_path / "data")
    assert "schema_file has no feature 'sex' that the configuration names" in message


def test_every_problem_is_listed_and_the_first_line_counts_them(penguins: PipelineConfig, tmp_path: Path) -> None:
    _span(tmp_path / "data", [*HEADER[:5], HEADER[6], "comments"], [[*row[:5], row[6], "x"] for row in ROWS])
    lines = _refusal(penguins, tmp_path / "data").splitlines()
    assert lines[0].endswith("(+1 more below)")
    assert [line.split(":")[0] for line in lines[1:]] == [
        "  - column 'sex' (features.categorical) is missing from span-2009/penguins.csv",
        "  - column 'comments' of span-2009/penguins.csv is not in the configuration "
        "(the served model would require it)",
    ]


def test_the_schema_is_read_as_feature_types(penguins: PipelineConfig) -> None:
    types = schema_types(penguins.schema_path)
    assert types["bill_length_mm"] == "FLOAT" and types["island"] == "BYTES" and types["species"] == "INT"
    assert set(types) == {*HEADER}  # the string domains' names are not features


def test_the_shipped_configurations_fit_their_schemas() -> None:
    from pipeline_components.data.preflight import check_schema

    for name in ("flights", "penguins"):
        assert check_schema(load_pipeline_config(CONFIGS / f"{name}.yaml")) == []


def test_a_configuration_file_written_by_hand_with_a_string_label_loads(tmp_path: Path) -> None:
    raw = yaml.safe_load((CONFIGS / "penguins.yaml").read_text())
    raw["label"] = {"column": "species", "kind": "multiclass", "values": "name", "classes": ["a", "b", "c"]}
    raw["schema_file"] = str(CONFIGS / raw["schema_file"])
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    assert load_pipeline_config(tmp_path / "p.yaml").label.values == "name"

"""The data gate's configuration (validation:, beam_pipeline_args) and the CSV pre-check, without TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_components.config import load_pipeline_config
from pipeline_components.errors import ConfigError, DataError
from pipeline_components.runtime.csv_check import check_csv_file, check_csv_files
from tests.conftest import CONFIGS


def test_shipped_configurations_name_their_suites_and_thresholds() -> None:
    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    assert flights.expectations_path == (CONFIGS / "expectations" / "flights.json").resolve()
    assert flights.expectations_path.is_file()
    assert flights.validation.drift["carrier"] == 0.1 and flights.validation.drift["temp"] == 0.5
    assert "temp" not in flights.validation.skew  # seasonal by nature across the window
    assert flights.beam_pipeline_args is None  # in-process by default
    penguins = load_pipeline_config(CONFIGS / "penguins.yaml")
    assert penguins.expectations_path.is_file() and penguins.validation.skew == {}


def test_shipped_configurations_expect_whole_deliveries_and_plausible_labels() -> None:
    """Production bounds in the files (a whole month of flights); tests set their own through overrides."""
    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    delivery = flights.validation.delivery
    assert (delivery.min_rows, delivery.max_rows, delivery.calendar_column) == (20000, 60000, "day")
    assert flights.validation.label.max_share_change == 0.1
    evaluation = flights.evaluation
    # Calibrated on the twelve months of 2013 (benchmarks/results/data_gate_months.md): looser than the new month's
    # change threshold, tighter than what wrong labels do.
    assert (evaluation.trusted_spans, evaluation.trusted_max_regression, evaluation.max_baseline_drop) == (3, 0.2, 0.2)
    assert evaluation.max_regression == 0.01
    # The suites no longer carry a row bound loose enough for samples: volume is DeliveryValidator's.
    for name in ("flights", "penguins"):
        suite = json.loads((CONFIGS / "expectations" / f"{name}.json").read_text())
        assert "expect_table_row_count_to_be_between" not in {e["type"] for e in suite["expectations"]}
    sample = flights.with_overrides({"validation.delivery.min_rows": 500})
    assert sample.validation.delivery.min_rows == 500 and sample.validation.delivery.max_rows == 60000


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"validation.drift": {"no_such_feature": 0.1}}, "not features", id="unknown-feature"),
        pytest.param({"validation.skew": {"carrier": 1.5}}, "thresholds must be in", id="threshold-above-1"),
        pytest.param({"validation.drift": {"carrier": 0}}, "thresholds must be in", id="threshold-zero"),
        pytest.param({"validation.label.max_share_change": 1.5}, "less than or equal to 1", id="share-change-above-1"),
        pytest.param({"validation.delivery.max_rows": 10}, r"max_rows \(10\) is below min_rows", id="rows-reversed"),
        pytest.param({"validation.delivery.min_rows_ratio": 0}, "greater than 0", id="ratio-zero"),
        pytest.param({"validation.delivery.max_rows_ratio": 0.5}, "greater than or equal to 1", id="ratio-below-1"),
        pytest.param({"evaluation.trusted_spans": -1}, "greater than or equal to 0", id="trusted-negative"),
        pytest.param({"evaluation.max_baseline_drop": 0}, "greater than 0", id="baseline-drop-zero"),
    ],
)
def test_bad_validation_settings_are_refused(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_pipeline_config(CONFIGS / "flights.yaml").with_overrides(overrides)


def test_beam_args_can_be_set_per_compile() -> None:
    args = ["--runner=FnApiRunner", "--direct_running_mode=multi_processing", "--direct_num_workers=0"]
    config = load_pipeline_config(CONFIGS / "flights.yaml").with_overrides({"beam_pipeline_args": args})
    assert config.beam_pipeline_args == args


HEADER = "a,b,c\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "is empty", id="zero-bytes"),
        pytest.param(HEADER.encode(), "has a header but no rows", id="header-only"),
        pytest.param(b"a,b,c\n1,2,3\n\x00\x01\x02", "NUL byte", id="binary"),
        pytest.param(b"a,b,c\n1,2,3\n\xff\xfe,1,2\n", "not UTF-8", id="not-utf8"),
        pytest.param(
            (HEADER + "1,2,3\n4,5").encode(), r"line 3 has 2 fields, the header has 3 \(the last line", id="cut"
        ),
        pytest.param((HEADER + "1,2\n4,5,6\n").encode(), r"line 2 has 2 fields, the header has 3;", id="short-row"),
        pytest.param(b"a,,c\n1,2,3\n", "unnamed column", id="unnamed"),
        pytest.param(b"a,b,a\n1,2,3\n", r"duplicated column name\(s\) \['a'\]", id="duplicate-name"),
    ],
)
def test_unreadable_csv_is_refused_with_the_reason(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "span-1" / "part.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        check_csv_file(path)


def test_a_good_file_passes_and_files_of_a_span_share_one_header(tmp_path: Path) -> None:
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    first.write_text(HEADER + "1,2,3\n")
    second.write_text("a,c,b\n1,3,2\n")
    assert check_csv_file(first) == ["a", "b", "c"]
    with pytest.raises(DataError, match="different headers"):
        check_csv_files([first, second])
    second.write_text(HEADER + "4,5,6")  # no final newline: fine
    check_csv_files([first, second])

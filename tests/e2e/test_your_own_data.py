"""The README's "Bring your own tabular dataset", followed literally, on data the project has never seen.

The data: the Chicago taxi trips that TFX ships with its examples (``tfx/examples/chicago_taxi_pipeline/data``, in
the runtime environment), written as a user's own CSV: one row per trip, ``year`` (of the trip's start) numbering
the spans, and ``tipped`` (yes/no: did the rider tip) as the label. Then the section's two commands, and a blessed,
pushed model that answers with the class names. Then each mistake the README lists, planted in a copy: each fails in
the run's first task, in seconds, with a message naming the column or key, and nothing is retried or pushed.
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline_components.settings import Settings
from tests.helpers import (
    PIPELINE_NODES,
    check,
    latest_summary,
    missing,
    model_store_versions,
    runtime_available,
    runway,
)

pytestmark = pytest.mark.e2e

NAME = "taxi_tips"
YEARS = ("2013", "2014", "2015")  # 2016 holds two months only: a partial delivery, which the data gate refuses


def _taxi_trips(settings: Settings) -> Path:
    """Where TFX's installed package keeps the Chicago taxi sample (asked of the runtime interpreter)."""
    if not runtime_available(settings):
        missing("the pipeline runtime environment (.venv-runtime) is not installed; run `make setup`")
    where = subprocess.run(
        [str(settings.runtime_python), "-c", "import importlib.util as u; print(u.find_spec('tfx').origin)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(where).parent / "examples" / "chicago_taxi_pipeline" / "data" / "simple" / "data.csv"


def write_trips_csv(source: Path, out: Path) -> int:
    """The user's CSV: every trip of 2013-2015, ``tips`` turned into the yes/no label, the start's year added."""
    rows = 0
    with source.open(newline="") as handle, out.open("w", newline="") as written:
        reader = csv.DictReader(handle)
        kept = [name for name in reader.fieldnames or [] if name not in ("tips", "trip_start_timestamp")]
        writer = csv.DictWriter(written, fieldnames=[*kept, "year", "tipped"], extrasaction="ignore")
        writer.writeheader()
        for row in reader:
            year = str(datetime.fromtimestamp(int(row["trip_start_timestamp"]), UTC).year)
            if year in YEARS:
                writer.writerow({**row, "year": year, "tipped": "yes" if float(row["tips"] or 0) > 0 else "no"})
                rows += 1
    return rows


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("your-data")
    return Settings.from_env({"RUNWAY_HOME": str(root / "home"), "RUNWAY_CONFIG_DIR": str(root / "configs")})


@pytest.fixture(scope="module")
def first_run(home: Settings) -> dict[str, Any]:
    """The README's two commands, as written there."""
    trips = home.home.parent / "trips.csv"
    assert write_trips_csv(_taxi_trips(home), trips) > 10_000
    init = check(runway(home, "init", NAME, "--csv", str(trips), "--label", "tipped", "--span-column", "year"))
    run = check(runway(home, "run", NAME, "--history"))
    print(init, run, sep="\n")  # what a user sees (pytest -rP shows it)
    return {"init": init, "run": run, "summary": latest_summary(home, NAME)}


def test_init_writes_everything_and_prints_the_next_command(home: Settings, first_run: dict[str, Any]) -> None:
    out = first_run["init"]
    assert "taxi_tips: 3 span(s)" in out
    assert "categorical  payment_type" in out and "left out     company                  missing in" in out
    assert "Label: tipped (binary, values name, classes ['no', 'yes'])" in out
    assert "Next: runway run taxi_tips --history" in out
    for written in ("taxi_tips.yaml", "schemas/taxi_tips/schema.pbtxt", "expectations/taxi_tips.json"):
        assert (home.config_dir / written).is_file()
    assert sorted(p.name for p in (home.data_dir / NAME).iterdir()) == ["span-2013", "span-2014", "span-2015"]


def test_one_run_takes_the_history_in_and_pushes_a_blessed_model(home: Settings, first_run: dict[str, Any]) -> None:
    out, summary = first_run["run"], first_run["summary"]
    assert "history: spans on disk [2013, 2014, 2015], ingested by earlier runs none; ingesting [2013, 2014]" in out
    assert "span 2013: ingested and validated" in out and "span 2014: ingested and validated" in out
    meta = summary["metadata"]
    assert meta["spans"] == {"ingested": [2015], "training_window": [2013, 2014, 2015]}
    assert "Spans left out: none" in out
    assert meta["evaluation"]["blessed"] is True and meta["evaluation"]["metrics"]["auc"] >= 0.6
    assert meta["push"]["pushed"] is True
    assert [v.name for v in model_store_versions(home, NAME)] == [str(meta["push"]["version"])]
    assert all(task["try_number"] <= 1 for task in summary["tasks"]), summary["tasks"]


def test_the_pushed_model_answers_with_the_class_names(home: Settings, first_run: dict[str, Any]) -> None:
    out = check(runway(home, "predict", NAME, "--count", "20"))
    predicted = [line.split()[1] for line in out.splitlines() if line.startswith("  predicted ")]
    assert len(predicted) == 20 and set(predicted) <= {"yes", "no"}
    actual = [line.split("actual ")[1].split()[0] for line in out.splitlines() if "actual " in line]
    assert set(actual) <= {"yes", "no"}


# --- each mistake, planted in a copy ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clean_copy(home: Settings, first_run: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The configuration folder and the spans as `runway init` wrote them, kept aside."""
    keep = tmp_path_factory.mktemp("clean")
    shutil.copytree(home.config_dir, keep / "configs")
    shutil.copytree(home.data_dir / NAME, keep / "data" / NAME)
    return keep


@pytest.fixture(scope="module")
def mistakes(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """One home for the mistakes (Airflow's database migrated once, one warm runtime): nothing ever runs to a push."""
    root = tmp_path_factory.mktemp("mistakes")
    return Settings.from_env({"RUNWAY_HOME": str(root / "home"), "RUNWAY_CONFIG_DIR": str(root / "configs")})


@pytest.fixture
def copy(clean_copy: Path, mistakes: Settings) -> Settings:
    """The clean configuration and spans, copied afresh for one mistake (new mtimes: `runway run` recompiles)."""
    shutil.rmtree(mistakes.config_dir, ignore_errors=True)
    shutil.rmtree(mistakes.data_dir / NAME, ignore_errors=True)
    shutil.copytree(clean_copy / "configs", mistakes.config_dir, copy_function=shutil.copy)
    shutil.copytree(clean_copy / "data" / NAME, mistakes.data_dir / NAME, copy_function=shutil.copy)
    return mistakes


def _rewrite_span(settings: Settings, change: Any) -> None:
    path = settings.data_dir / NAME / "span-2015" / "data.csv"
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    rows = [change(dict(row)) for row in rows]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _edit_config(settings: Settings, change: Any) -> None:
    path = settings.config_dir / f"{NAME}.yaml"
    raw = yaml.safe_load(path.read_text())
    change(raw)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def _refused_at_check_params(settings: Settings) -> tuple[str, dict[str, Any]]:
    """`runway run` on the planted copy: refused by its first task, in seconds, nothing retried, nothing pushed."""
    result = runway(settings, "run", NAME)
    print(result.stdout, result.stderr, sep="\n")  # what a user sees (pytest -rP shows it)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    summary = latest_summary(settings, NAME)
    states = {task["task_id"]: task for task in summary["tasks"]}
    assert states["check_params"]["state"] == "failed" and states["check_params"]["seconds"] < 10
    assert {states[node]["state"] for node in PIPELINE_NODES if node in states} == {"upstream_failed"}
    assert all(task["try_number"] <= 1 for task in summary["tasks"]), summary["tasks"]
    assert model_store_versions(settings, NAME) == []
    return result.stdout, summary


def test_a_feature_missing_from_new_data_is_named(copy: Settings) -> None:
    _rewrite_span(copy, lambda row: {k: v for k, v in row.items() if k != "payment_type"})
    out, summary = _refused_at_check_params(copy)
    assert (
        "Failed: check_params: taxi_tips, span 2015: column 'payment_type' (features.categorical) is missing from "
        "span-2015/data.csv: re-deliver the span with it, or remove it from features.categorical"
    ) in out
    log = Path(summary["failures"]["check_params"]["report"])
    assert f"  full report: {log}" in out and log.is_file()  # the task's log, with every problem listed


def test_a_new_column_is_named(copy: Settings) -> None:
    _rewrite_span(copy, lambda row: {**row, "tolls": "0.0"})
    out, _ = _refused_at_check_params(copy)
    assert "Failed: check_params: taxi_tips, span 2015: column 'tolls' of span-2015/data.csv is not in the " in out


def test_a_label_of_names_configured_as_indices_is_named(copy: Settings) -> None:
    _edit_config(copy, lambda raw: raw.update(label={"column": "tipped", "kind": "binary"}))
    out, _ = _refused_at_check_params(copy)
    assert (
        "Failed: check_params: taxi_tips, span 2015: label 'tipped' holds text ('no', 'yes'; first on line 2 of "
        "data.csv) but label.values is 'index'"
    ) in out


def test_a_missing_expectation_suite_is_named(copy: Settings) -> None:
    (copy.config_dir / "expectations" / f"{NAME}.json").unlink()
    out, _ = _refused_at_check_params(copy)
    assert "Failed: check_params: taxi_tips, span 2015: validation.expectations_file: the expectation suite" in out


def test_every_configuration_error_is_printed_with_its_key(copy: Settings) -> None:
    def spoil(raw: dict[str, Any]) -> None:
        raw["model"]["train_steps"] = 0
        raw["evaluation"]["lower_bund"] = 0.7
        raw["data"]["window_spans"] = "all"

    _edit_config(copy, spoil)
    for command in (["compile", NAME], ["schema", NAME], ["run", NAME]):
        result = runway(copy, *command)
        print(f"$ runway {' '.join(command)}", result.stderr, sep="\n")
        assert result.returncode == 2
        for key in ("data.window_spans", "model.train_steps", "evaluation.lower_bund"):
            assert f"  - {key}:" in result.stderr, (command, result.stderr)
    assert model_store_versions(copy, NAME) == []

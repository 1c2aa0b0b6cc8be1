"""The console page of a pipeline, built from a real model store (version folders, models.config, the TFLite
publication) and runs read from Airflow's tables: what each section shows, to whom the buttons are shown, and that
data from runs is escaped. The fleet section against real model servers: tests/fleet/test_console_fleet.py."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.console.page import build_console
from pipeline_components.console.runs import RunRecord, read_runs
from pipeline_components.fleet.store import ModelStore
from tests.conftest import CONFIGS
from tests.unit.console.airflow_db import airflow_engine, succeeded_run, write_run
from tests.unit.console.model_store import model_store
from tests.unit.console.page_html import Element, parse

HOSTILE = "<script>alert(1)</script> drift above threshold"


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return load_pipeline_config(CONFIGS / "penguins.yaml")


@pytest.fixture(scope="module")
def runs() -> list[RunRecord]:
    engine = airflow_engine()
    write_run(
        engine,
        "penguins_pipeline",
        "scheduled__2",
        succeeded_run(2, accuracy=0.95, rows=117),
        state="success",
        minutes=0,
    )
    write_run(
        engine, "penguins_pipeline", "scheduled__3", succeeded_run(3, accuracy=0.96, rows=240, diff=0.01, served=0.93),
        state="success", minutes=10,
    )  # fmt: skip
    refused = succeeded_run(0, accuracy=0.9, rows=300)
    refused["DriftSkewValidator"] = ("failed", {"runway_failure": {"reason": HOSTILE, "report": ""}})
    for task in [t for t in refused if t not in ("check_params", "CsvExampleGen", "StatisticsGen")][3:]:
        refused[task] = ("upstream_failed", {})
    write_run(engine, "penguins_pipeline", "scheduled__4", refused, state="failed", minutes=20)
    with Session(engine) as session:
        return read_runs(session, "penguins_pipeline")


@pytest.fixture
def store(tmp_path: Path, config: PipelineConfig) -> ModelStore:
    model = config.serving.model_name
    store = model_store(tmp_path / "models", model, (1, 2, 3), {"stable": 2, "canary": 3}, served=(2, 3))
    tflite = store.version_path(model, 3) / "tflite"
    tflite.mkdir()
    index = {
        "source_run_id": "scheduled__3",
        "variants": ["float32", "int8"],
        "rejected": {"pruned": "accuracy drop 0.041 above the budget 0.010"},
    }
    (tflite / "index.json").write_text(json.dumps(index))
    (tflite / "float32.json").write_text(json.dumps({"size_bytes": 7468}))
    (tflite / "int8.json").write_text(json.dumps({"size_bytes": 3010}))
    return store


def _page(config: PipelineConfig, store: ModelStore, runs: list[RunRecord], *, can_act: bool) -> Element:
    return parse(build_console(config=config, store=store, fleet=None, runs=runs, can_act=can_act))


def test_versions_show_where_each_came_from_and_its_checks(
    config: PipelineConfig, store: ModelStore, runs: list[RunRecord]
) -> None:
    versions = _page(config, store, runs, can_act=False).by_id("versions")
    rows = versions.find("tr", data_version="3") + versions.find("tr", data_version="2")
    assert [row.attrs["data-version"] for row in versions.find("tr") if "data-version" in row.attrs] == ["3", "2", "1"]
    three, two = rows
    assert [label.attrs["data-label"] for label in three.find("span", **{"class": "label"})] == ["canary"]
    assert [label.attrs["data-label"] for label in two.find("span", **{"class": "label"})] == ["stable"]
    assert "scheduled__3" in three.text and "scheduled__2" in two.text  # which run pushed it
    assert "sparse_categorical_accuracy 0.9600 (+0.0100 vs baseline), blessed" in three.text
    assert "keeps the serving contract" in three.text and "16 warmup records" in three.text
    assert "float32 7,468 B" in three.text and "int8 3,010 B" in three.text
    assert "pruned: accuracy drop 0.041 above the budget 0.010" in three.text


def test_only_a_user_who_may_trigger_gets_buttons(
    config: PipelineConfig, store: ModelStore, runs: list[RunRecord]
) -> None:
    viewer = _page(config, store, runs, can_act=False)
    assert viewer.find("button") == []
    operator = _page(config, store, runs, can_act=True).by_id("versions")
    promote = operator.find("button", data_action="promote")
    assert sorted(button.attrs["data-version"] for button in promote) == ["1", "3"]  # not on the stable version
    assert len(operator.find("button", data_action="rollback")) == 1


def test_runs_show_each_gate_and_the_refusal_as_text(
    config: PipelineConfig, store: ModelStore, runs: list[RunRecord]
) -> None:
    html = build_console(config=config, store=store, fleet=None, runs=runs, can_act=False)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    section = parse(html).by_id("runs")
    order = [row.attrs["data-run-id"] for row in section.find("tr") if "data-run-id" in row.attrs]
    assert order == ["scheduled__4", "scheduled__3", "scheduled__2"]
    refused = section.find("tr", data_run_id="scheduled__4")[0]
    data = refused.find("td", data_gate="data")[0]
    assert data.attrs["data-verdict"] == "failed" and HOSTILE in data.text
    assert refused.find("td", data_gate="push")[0].attrs["data-verdict"] == "skipped"
    passed = section.find("tr", data_run_id="scheduled__3")[0]
    assert {td.attrs["data-gate"]: td.attrs["data-verdict"] for td in passed.find("td") if "data-gate" in td.attrs} == {
        "data": "passed", "evaluation": "passed", "contract": "passed", "infra": "passed", "push": "passed",
        "rollout": "passed",
    }  # fmt: skip
    assert passed.find("a", href="/runway/reports/penguins/run/Evaluator.html")


def test_the_trend_is_a_matplotlib_chart_of_the_metric_and_rows(
    config: PipelineConfig, store: ModelStore, runs: list[RunRecord]
) -> None:
    image = _page(config, store, runs, can_act=False).by_id("trend").find("img")[0]
    prefix = "data:image/svg+xml;base64,"
    assert image.attrs["src"].startswith(prefix)
    svg = base64.b64decode(image.attrs["src"][len(prefix) :]).decode()
    assert "Matplotlib" in svg and "sparse_categorical_accuracy" in svg and "rows ingested" in svg
    # The served model on each new month (the Evaluator's baseline) is a line of its own.
    assert "served model on the new span" in svg
    assert runs[1].served_metric("sparse_categorical_accuracy") == 0.93  # scheduled__3


def test_without_a_fleet_the_page_says_so(config: PipelineConfig, store: ModelStore) -> None:
    page = _page(config, store, [], can_act=False)
    assert page.by_id("fleet").find("tr", data_instance="serving-0") == []
    assert "No serving fleet is described" in page.by_id("fleet").text
    assert "no run yet" in page.by_id("runs").text and page.by_id("trend").find("img") == []

"""The console's fleet section on a real 3-instance local fleet: each instance asked now, its versions with their
states, the labels it serves, and an instance that stopped answering shown down (not a cached state)."""

from __future__ import annotations

import pytest

from pipeline_components.config import PipelineConfig, load_pipeline_config
from pipeline_components.console.page import build_console
from tests.conftest import CONFIGS
from tests.fleet.fixtures import RunningFleet
from tests.unit.console.page_html import Element, parse

pytestmark = pytest.mark.runtime

MODEL = "tiny_console"


def _config() -> PipelineConfig:
    config = load_pipeline_config(CONFIGS / "penguins.yaml")
    return config.model_copy(update={"serving": config.serving.model_copy(update={"model_name": MODEL})})


def _instances(fleet: RunningFleet) -> dict[str, Element]:
    state = fleet.fleet.state() or fleet.state
    page = parse(build_console(config=_config(), store=fleet.store, fleet=state, runs=[], can_act=False))
    return {row.attrs["data-instance"]: row for row in page.by_id("fleet").find("tr") if "data-instance" in row.attrs}


def test_each_instance_shows_its_versions_and_labels_live(local_fleet: RunningFleet) -> None:
    local_fleet.publish(MODEL, 1, "good_a")
    local_fleet.rollout(MODEL).run(1)
    local_fleet.publish(MODEL, 2, "good_b")
    local_fleet.rollout(MODEL).run(2)
    rows = _instances(local_fleet)
    assert sorted(rows) == ["serving-0", "serving-1", "serving-2"]
    for name, row in rows.items():
        assert row.attrs["data-health"] == "ok", name
        assert row.find("span", data_version="2", data_state="AVAILABLE"), name
        assert [(s.attrs["data-label"], s.attrs["data-version"]) for s in row.find("span", **{"class": "label"})] == [
            ("stable", "2")
        ], name

    local_fleet.fleet.stop_instance("serving-1", kill=True)
    try:
        rows = _instances(local_fleet)
        assert rows["serving-1"].attrs["data-health"] == "down"
        assert rows["serving-1"].find("span", **{"class": "label"}) == []  # a stopped server serves no label
        assert rows["serving-0"].attrs["data-health"] == rows["serving-2"].attrs["data-health"] == "ok"
    finally:
        local_fleet.fleet.start_instance("serving-1")

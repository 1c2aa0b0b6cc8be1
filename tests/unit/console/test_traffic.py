"""The console's "Served traffic" section: the monitoring windows, newest first, an alert and its features at a
glance, each window's report one click away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline_components.config import load_pipeline_config
from pipeline_components.console.page import build_console
from pipeline_components.console.traffic import read_windows
from pipeline_components.fleet.store import ModelStore
from tests.conftest import CONFIGS
from tests.unit.console.page_html import parse


def _window(home: Path, stamp: str, *, alert: bool, crossed: list[dict[str, Any]]) -> None:
    folder = home / "reports" / "flights" / f"monitoring-{stamp}"
    folder.mkdir(parents=True)
    quiet = {"check": "skew", "feature": "carrier", "observed": 0.02, "threshold": 0.1, "failed": False}
    result = {
        "window": {"since_utc": f"{stamp} start", "until_utc": f"{stamp} end"},
        "rows": 600,
        "rows_per_version": {"3": 600},
        "alert": alert,
        "measurements": [quiet, *crossed],
    }
    (folder / "result.json").write_text(json.dumps(result))


def test_windows_newest_first_with_what_crossed_and_their_report(tmp_path: Path) -> None:
    _window(tmp_path, "20260101T000000Z", alert=False, crossed=[])
    temp = {"check": "skew", "feature": "temp", "observed": 0.9937, "threshold": 0.5, "failed": True}
    gone = {"check": "drift", "feature": "origin", "observed": None, "threshold": 0.1, "failed": True}
    _window(tmp_path, "20260201T000000Z", alert=True, crossed=[temp, gone])
    broken = tmp_path / "reports" / "flights" / "monitoring-20260301T000000Z"
    broken.mkdir()
    (broken / "result.json").write_text("{")  # being written: left out, not an error page

    windows = read_windows(tmp_path, "flights")

    assert [w.until_utc for w in windows] == ["20260201T000000Z end", "20260101T000000Z end"]
    assert windows[0].alert and windows[0].crossed == ["skew temp 0.994 > 0.5", "drift origin absent"]
    assert windows[0].report == "/runway/reports/flights/monitoring-20260201T000000Z/report.html"
    assert windows[0].versions == "version 3: 600 rows" and not windows[1].alert

    flights = load_pipeline_config(CONFIGS / "flights.yaml")
    store = ModelStore(tmp_path / "models")
    section = parse(build_console(config=flights, store=store, fleet=None, runs=[], can_act=False, windows=windows))
    rows = section.by_id("traffic").find("tr", data_alert="yes")
    assert len(rows) == 1 and "retraining requested" in rows[0].text
    assert rows[0].find("a", href=windows[0].report)
    assert len(section.by_id("traffic").find("tr", data_alert="no")) == 1


def test_a_pipeline_that_logs_nothing_says_so(tmp_path: Path) -> None:
    penguins = load_pipeline_config(CONFIGS / "penguins.yaml")
    page = parse(build_console(config=penguins, store=ModelStore(tmp_path), fleet=None, runs=[], can_act=False))
    assert "does not log this pipeline's requests" in page.by_id("traffic").text

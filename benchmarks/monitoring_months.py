"""Benchmark: the monitoring of served traffic over the twelve months of 2013, and four upstream corruptions.

What an operator needs before trusting the alerts: on normal months, which features would raise an alert, and by
how much; on a corrupted month, whether the corrupted feature is named. For each month M of 2013 (2..12), as the
monthly schedule sees it (``configs/flights.yaml``: a version trained on the months before M serves M):

- served traffic: 2,000 rows of month M spread over the month in time order (``runway traffic replay --count``);
- skew: against the training statistics of each month of the version's window (M-3..M-1), the nearest month
  counting (``monitoring.window.nearest_span``), with TFDV's comparators (``drift_skew_validator.compare``);
- drift: against the previous window, 2,000 rows of month M-1;
- thresholds: the ``monitoring`` section of ``configs/flights.yaml``.

The training statistics are TFDV's statistics of each whole month's rows (the pipeline's StatisticsGen computes the
same statistics from the same rows' tf.Examples; the lookup through ML Metadata is tested in
``tests/runtime/monitoring``). Then a stale version (trained on January..March, never retrained) serving April,
July and October; and June, served to the version trained on March..May, corrupted four ways.
Writes ``benchmarks/results/monitoring_months.{json,md,png}``.

    nice -n 10 .venv-runtime/bin/python benchmarks/monitoring_months.py [--data var/data]

Needs the twelve prepared months (``runway data prepare flights``) under ``--data`` (default ``$RUNWAY_HOME/data``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline_components.config import load_pipeline_config
from pipeline_components.settings import CHECKOUT, Settings

RESULTS = CHECKOUT / "benchmarks" / "results"
SERVED_ROWS = 2000
WINDOW = 3  # data.window_spans of configs/flights.yaml
ICAO = {
    "UA": "UAL", "AA": "AAL", "B6": "JBU", "DL": "DAL", "EV": "ASQ", "MQ": "ENY", "US": "USA", "WN": "SWA",
    "VX": "VRD", "FL": "TRS", "AS": "ASA", "9E": "EDV", "F9": "FFT", "HA": "HAL", "YV": "ASH", "OO": "SKW",
}  # fmt: skip
CORRUPTIONS = {
    "distance in kilometres": lambda f: f.assign(distance=f["distance"] * 1.609344),
    "carriers as ICAO codes": lambda f: f.assign(carrier=f["carrier"].map(lambda c: ICAO.get(c, c))),
    "temperature in Celsius": lambda f: f.assign(temp=(f["temp"] - 32) * 5 / 9, dewp=(f["dewp"] - 32) * 5 / 9),
    "origin airports renamed (KJFK)": lambda f: f.assign(origin="K" + f["origin"]),
}


def spread(frame: pd.DataFrame, count: int) -> pd.DataFrame:
    """``count`` rows evenly across ``frame`` in its (time) order, as ``runway traffic replay --count`` sends them."""
    return frame.iloc[[i * len(frame) // count for i in range(count)]].reset_index(drop=True)


def judge(
    served: pd.DataFrame, training: dict[int, Any], previous: Any, *, config: Any, stats: Any
) -> list[dict[str, Any]]:
    """Skew (nearest training month) and drift of one window, as the monitoring computes them; as dicts."""
    from pipeline_components.monitoring.window import drift, skew

    statistics = stats["of"](served)
    measured = skew(config, schema=stats["schema"], statistics=statistics, training=training, who="served")
    measured += drift(config, schema=stats["schema"], statistics=statistics, previous=previous,
                      compared="vs the previous window")  # fmt: skip
    return [{**vars(m), "failed": m.failed} for m in measured]


def data_gate(month: pd.DataFrame, previous: Any, *, config: Any, stats: Any) -> dict[str, Any]:
    """What the pipeline's data gate says of a whole month as its new span: the schema (TFDV anomalies) and drift
    against the previous month with ``validation.drift`` (the DriftSkewValidator's own ``compare``)."""
    import tensorflow_data_validation as tfdv

    from pipeline_components.components.drift_skew_validator.executor import compare

    statistics = tfdv.generate_statistics_from_dataframe(month[[*config.features.all, config.label.column]])
    anomalies = tfdv.validate_statistics(statistics, stats["schema"]).anomaly_info
    drift = compare(kind="drift", schema=stats["schema"], thresholds=dict(config.validation.drift),
                    categorical=set(config.features.categorical), statistics=statistics, other=previous,
                    compared="June vs May")  # fmt: skip
    crossed = [f"{m.feature} {m.observed:.3f}/{m.threshold:g}" for m in drift if m.failed]
    return {"refused": bool(anomalies) or bool(crossed), "schema_anomalies": sorted(anomalies), "drift": crossed}


def summary(measurements: list[dict[str, Any]]) -> dict[str, Any]:
    def ratio(m: dict[str, Any]) -> float:
        return float("inf") if m["observed"] is None else m["observed"] / m["threshold"]

    # A threshold of 1.0 switches a feature off (a distance cannot exceed 1): not among the closest.
    top = sorted((m for m in measurements if m["threshold"] < 1), key=ratio, reverse=True)
    return {
        "alert": any(m["failed"] for m in measurements),
        "crossed": sorted({f"{m['check']} {m['feature']}" for m in measurements if m["failed"]}),
        "closest": [f"{m['check']} {m['feature']} {m['observed']:.3f}/{m['threshold']:g}" for m in top[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Settings.from_env().data_dir, help="prepared data folder")
    args = parser.parse_args()

    import tensorflow_data_validation as tfdv

    started = time.monotonic()
    config = load_pipeline_config(CHECKOUT / "configs" / "flights.yaml")
    features = list(config.features.all)
    months = {m: pd.read_csv(args.data / "flights" / f"span-2013-{m:02d}" / "flights.csv") for m in range(1, 13)}
    stats = {
        "schema": tfdv.load_schema_text(str(config.schema_path)),
        "of": lambda frame: tfdv.generate_statistics_from_dataframe(frame[features]),
    }
    whole = {m: stats["of"](frame) for m, frame in months.items()}
    print(f"statistics of the 12 whole months: {time.monotonic() - started:.0f} s", flush=True)

    normal = []
    for m in range(2, 13):
        window = {t: whole[t] for t in range(max(1, m - WINDOW), m)}
        measured = judge(spread(months[m], SERVED_ROWS), window, stats["of"](spread(months[m - 1], SERVED_ROWS)),
                         config=config, stats=stats)  # fmt: skip
        normal.append({"month": m, "trained_on": list(window), **summary(measured), "measurements": measured})
        print(f"month {m:2d}: {'ALERT ' + ', '.join(normal[-1]['crossed']) if normal[-1]['alert'] else 'quiet'}")

    stale = []  # nobody retrained: the version trained on January..March still serves later months
    for m in (4, 7, 10):
        window = {t: whole[t] for t in (1, 2, 3)}
        measured = judge(spread(months[m], SERVED_ROWS), window, stats["of"](spread(months[m - 1], SERVED_ROWS)),
                         config=config, stats=stats)  # fmt: skip
        stale.append({"month": m, "trained_on": [1, 2, 3], **summary(measured), "measurements": measured})
        print(f"month {m:2d} served by the January..March version: {', '.join(stale[-1]['crossed']) or 'quiet'}")

    corrupted = []
    june, window = months[6], {t: whole[t] for t in (3, 4, 5)}
    previous = stats["of"](spread(months[5], SERVED_ROWS))
    for name, corrupt in CORRUPTIONS.items():
        measured = judge(corrupt(spread(june, SERVED_ROWS)), window, previous, config=config, stats=stats)
        # The retraining the alert starts ingests the corrupted month as a span: the data gate's view of it.
        gate = data_gate(corrupt(june), whole[5], config=config, stats=stats)
        corrupted.append(
            {"corruption": name, "trained_on": list(window), **summary(measured), "measurements": measured,
             "data_gate": gate}
        )  # fmt: skip
        said = f"data gate {'REFUSES' if gate['refused'] else 'passes'} ({gate['schema_anomalies']}, {gate['drift']})"
        print(f"June, {name}: {', '.join(corrupted[-1]['crossed']) or 'NOT DETECTED'}; {said}")

    control = data_gate(june, whole[5], config=config, stats=stats)  # the same gate on June as it came
    print(f"June as it came: data gate {'REFUSES' if control['refused'] else 'passes'}")

    result = {
        "command": "nice -n 10 .venv-runtime/bin/python benchmarks/monitoring_months.py",
        "served_rows": SERVED_ROWS,
        "thresholds": config.monitoring.model_dump(),
        "seconds": round(time.monotonic() - started, 1),
        "normal_months": normal,
        "stale_version": stale,
        "corrupted_june": corrupted,
        "june_data_gate_control": control,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "monitoring_months.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "monitoring_months.md").write_text(markdown(result))
    plot(result, RESULTS / "monitoring_months.png")


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "# Monitoring of served traffic over 2013 (benchmarks/monitoring_months.py)",
        "",
        f"`{result['command']}` ({result['seconds']:.0f} s). Each month M is served ({result['served_rows']} rows "
        "spread over the month) by a version trained on M-3..M-1: skew against the nearest training month, drift "
        "against M-1; thresholds from `configs/flights.yaml` (`monitoring`): "
        f"`{json.dumps(result['thresholds'])}`.",
    ]
    sections = (
        ("Normal months", "month", "normal_months"),
        ("A stale version: nobody retrained since March", "month", "stale_version"),
        ("June corrupted upstream (served to the version trained on March..May)", "corruption", "corrupted_june"),
    )
    for title, first, key in sections:
        lines += ["", f"## {title}", "", f"| {first} | trained on | alert | crossed | closest (observed/threshold) |",
                  "|---|---|---|---|---|"]  # fmt: skip
        for row in result[key]:
            trained_on = ", ".join(map(str, row["trained_on"]))
            lines.append(
                f"| {row[first]} | {trained_on} | {'**yes**' if row['alert'] else 'no'} | "
                f"{', '.join(row['crossed']) or '-'} | {'; '.join(row['closest'])} |"
            )
    lines += ["", "## The retraining's data gate on the same corrupted month", "",
              "The alert starts retraining, which ingests the corrupted June as a new span: the data gate's verdict "
              "on the whole month (schema anomalies from TFDV against the committed schema; drift against May with "
              "`validation.drift`).", "", "| corruption | data gate | schema anomalies | drift crossed |",
              "|---|---|---|---|"]  # fmt: skip
    rows = [
        *result["corrupted_june"],
        {"corruption": "none (June as it came)", "data_gate": result["june_data_gate_control"]},
    ]
    for row in rows:
        gate = row["data_gate"]
        lines.append(
            f"| {row['corruption']} | {'**refused**' if gate['refused'] else 'passed'} | "
            f"{', '.join(gate['schema_anomalies']) or '-'} | {', '.join(gate['drift']) or '-'} |"
        )
    return "\n".join(lines) + "\n"


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(f"{row['month']:02d}", row["measurements"]) for row in result["normal_months"]]
    rows += [(f"{row['month']:02d} by Jan..Mar", row["measurements"]) for row in result["stale_version"]]
    rows += [(row["corruption"], row["measurements"]) for row in result["corrupted_june"]]
    keys = sorted({f"{m['check']}: {m['feature']}" for _, measured in rows for m in measured})
    grid = [
        [next((min(m["observed"] / m["threshold"], 3.0) if m["observed"] is not None else 3.0
               for m in measured if f"{m['check']}: {m['feature']}" == key), 0.0) for key in keys]
        for _, measured in rows
    ]  # fmt: skip
    figure, axes = plt.subplots(figsize=(14, 7))
    image = axes.imshow(grid, cmap="RdYlGn_r", vmin=0, vmax=2, aspect="auto")
    axes.set_xticks(range(len(keys)), keys, rotation=90, fontsize=7)
    axes.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    axes.set_title("observed / threshold (above 1: alert); rows: served month, stale version, corrupted June")
    figure.colorbar(image, ax=axes, shrink=0.6)
    figure.tight_layout()
    figure.savefig(out, dpi=110)


if __name__ == "__main__":
    main()

"""The key figures of one node's execution, for the task log's closing summary, the task's XComs and its page.

An operator reads these instead of digging through artifacts: rows per split, anomalies, metrics against the
baseline, whether the model was blessed, the version pushed, a custom gate's verdict (``components/gate.py``).
They are read from the node's output artifacts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline_components.components.gate import read_gate

log = logging.getLogger("runway.figures")


def _split_dirs(uri: str) -> dict[str, Path]:
    root = Path(uri)
    return {p.name.removeprefix("Split-"): p for p in sorted(root.glob("Split-*"))} if root.is_dir() else {}


def statistics_figures(uri: str) -> dict[str, Any]:
    """Rows per split of a StatisticsGen artifact (``rows``) and their sum (``rows_total``)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    rows: dict[str, int] = {}
    for split, folder in _split_dirs(uri).items():
        path = folder / "FeatureStats.pb"
        if path.is_file():
            stats = statistics_pb2.DatasetFeatureStatisticsList()
            stats.ParseFromString(path.read_bytes())
            rows[split] = int(sum(dataset.num_examples for dataset in stats.datasets))
    return {"rows": rows, "rows_total": sum(rows.values())}


def anomalies_figures(uri: str) -> dict[str, Any]:
    """Every anomaly per split: feature, short description, and TFDV's description (observed vs expected)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found: list[dict[str, str]] = []
    for split, folder in _split_dirs(uri).items():
        path = folder / "SchemaDiff.pb"
        if not path.is_file():
            continue
        anomalies = anomalies_pb2.Anomalies()
        anomalies.ParseFromString(path.read_bytes())
        for feature, info in sorted(anomalies.anomaly_info.items()):
            found.append(
                {"split": split, "feature": feature, "short": info.short_description, "description": info.description}
            )
        dataset = anomalies.dataset_anomaly_info
        for reason in dataset.reason:
            found.append(
                {
                    "split": split,
                    "feature": "(dataset)",
                    "short": reason.short_description,
                    "description": reason.description,
                }
            )
    return {"anomalies": found, "anomaly_count": len(found), "report": uri}


def node_figures(component: str, outputs: dict[str, list[Any]]) -> dict[str, Any]:
    """Figures for the components that have any; {} for the rest."""

    def uri(key: str) -> str | None:
        artifacts = outputs.get(key) or []
        return artifacts[0].uri if artifacts else None

    try:
        if component.endswith("ExampleGen") and (examples := outputs.get("examples")):
            # TFX's ExampleGen driver records the span as a custom property.
            span = examples[0].get_int_custom_property("span") or examples[0].span
            return {"span": span, "examples": examples[0].uri}
        if component == "StatisticsGen" and (stats_uri := uri("statistics")):
            return statistics_figures(stats_uri)
        if component == "ExampleValidator" and (anomalies_uri := uri("anomalies")):
            return anomalies_figures(anomalies_uri)
        if component == "Evaluator" and (evaluation_uri := uri("evaluation")):
            from pipeline_components.components.evaluator.results import evaluator_figures

            blessing = outputs.get("blessing") or []
            return evaluator_figures(evaluation_uri, blessing[0] if blessing else None)
        if component == "Pusher" and (pushed := outputs.get("pushed_model")):
            artifact = pushed[0]
            return {
                "pushed": bool(artifact.get_int_custom_property("pushed")),
                "version": artifact.get_string_custom_property("pushed_version") or None,
                "destination": artifact.get_string_custom_property("pushed_destination") or None,
            }
        if component == "Trainer" and (model_uri := uri("model")):
            return {"model": model_uri}
        return read_gate(outputs)
    except Exception as err:  # figures are a convenience: never fail a node that succeeded because of them
        log.warning("could not read the figures of %s: %s", component, err)
    return {}

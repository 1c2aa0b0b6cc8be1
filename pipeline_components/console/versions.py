"""The model versions in the store, each with what the console says of it: which run pushed it and when, its
evaluation against the baseline, its contract check, infra validation, TFLite variants (accepted with sizes,
rejected with reasons) and the labels it holds.

From the store itself (the version folders, ``models.config``, and ``<version>/tflite/``: ``index.json`` names the
run that built the variants and the rejected ones, ``<variant>.json`` the accepted one's size, both written by
TFLitePublisher) and from the pushing run's XComs (``runs.py``). A handful of small files per version.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline_components.console.runs import RunRecord, by_version
from pipeline_components.fleet.store import ModelStore

TFLITE_DIR, TFLITE_INDEX = "tflite", "index.json"  # = components/tflite_variants/publish.py (runtime side)


@dataclass(frozen=True)
class VersionRecord:
    """One version folder of the model in the store."""

    version: int
    labels: tuple[str, ...]
    served: bool  # in models.config: the fleet loads it
    pushed_at: datetime | None
    run_id: str | None
    evaluation: str
    contract: str
    infra: str
    tflite_accepted: list[tuple[str, int | None]] = field(default_factory=list)  # name, size in bytes
    tflite_rejected: list[str] = field(default_factory=list)  # "name: reason"

    @property
    def stable(self) -> bool:
        return "stable" in self.labels


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def evaluation_line(run: RunRecord | None, metric: str) -> str:
    """The candidate's metric, its change against the baseline, and whether it was blessed."""
    if run is None:
        return "unknown (its run is not among the runs Airflow lists)"
    value = run.metric(metric)
    if value is None:
        return "no evaluation recorded"
    diff = run.metric(f"{metric}_diff")
    against = f" ({diff:+.4f} vs baseline)" if diff is not None else " (no baseline: the first model)"
    blessed = run.figure("Evaluator", "blessed")
    return f"{metric} {value:.4f}{against}" + ("" if blessed is None else (", blessed" if blessed else ", not blessed"))


def read_versions(store: ModelStore, model: str, runs: list[RunRecord], *, metric: str) -> list[VersionRecord]:
    """Every complete version of ``model`` in ``store``, newest first.

    Args:
        store: the model store.
        model: the model's name under the store.
        runs: the pipeline's runs (``runs.read_runs``), to find the run that pushed each version.
        metric: the evaluation metric the configuration gates on.
    """
    serving = store.serving(model)
    pushers = by_version(runs)
    found = []
    for version in reversed(store.versions_on_disk(model)):
        folder = store.version_path(model, version)
        index = _read_json(folder / TFLITE_DIR / TFLITE_INDEX)
        run = pushers.get(version)
        run_id = run.run_id if run is not None else index.get("source_run_id")
        if run is None and run_id:
            run = next((candidate for candidate in runs if candidate.run_id == run_id), None)
        pushed_at = run.ended.get("Pusher") if run is not None else None
        if pushed_at is None:  # the folder appeared in one rename when the version was pushed
            pushed_at = datetime.fromtimestamp(folder.stat().st_mtime, tz=UTC)
        accepted = [
            (name, _read_json(folder / TFLITE_DIR / f"{name}.json").get("size_bytes"))
            for name in index.get("variants", [])
        ]
        rejected = [f"{name}: {reason}" for name, reason in sorted((index.get("rejected") or {}).items())]
        if not index and run is not None:
            rejected = list(run.figure("TFLiteVariants", "tflite_rejected") or [])
        found.append(
            VersionRecord(
                version=version,
                labels=tuple(sorted(label for label, labelled in serving.labels.items() if labelled == version)),
                served=version in serving.versions,
                pushed_at=pushed_at,
                run_id=run_id,
                evaluation=evaluation_line(run, metric),
                contract=_gate_line(run, "ModelInspector"),
                infra=_gate_line(run, "InfraValidator"),
                tflite_accepted=accepted,
                tflite_rejected=rejected,
            )
        )
    return found


def _gate_line(run: RunRecord | None, task: str) -> str:
    if run is None:
        return "unknown"
    return str(run.figure(task, "gate_summary") or run.tasks.get(task) or "not run")

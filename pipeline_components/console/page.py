"""The console's page of one pipeline: the fleet now, the versions in the store, the runs, the trend.

``build_console`` gathers what the page shows from where it lives (the instances, asked live; the store; the runs
read from Airflow's database by the caller) and renders ``reports/templates/console.html``. Per view: one status
call per instance and model, three database queries (``runs.py``), a few small files per version.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline_components.config import PipelineConfig
from pipeline_components.console.actions import CONSOLE_HEADER, grid_url
from pipeline_components.console.chart import trend_chart
from pipeline_components.console.runs import GATES, RunRecord
from pipeline_components.console.traffic import WindowRecord
from pipeline_components.console.versions import VersionRecord, read_versions
from pipeline_components.fleet import LABELS, FleetState
from pipeline_components.fleet.status import fleet_status
from pipeline_components.fleet.store import ModelStore
from pipeline_components.orchestration import dag_id_for, serving_dag_id_for
from pipeline_components.orchestration.links import URL_PREFIX
from pipeline_components.reports.render import Verdict, render

CONSOLE_PREFIX = f"{URL_PREFIX}/console"
STATUS_TIMEOUT_S = 1.0  # per instance: a page must not hang on a server that does not answer


@dataclass(frozen=True)
class InstanceRow:
    """One serving instance as the fleet section shows it."""

    name: str
    health: str  # ok | down
    versions: list[tuple[int, str]] = field(default_factory=list)  # version, state (AVAILABLE, LOADING, ...)
    labels: list[tuple[str, int]] = field(default_factory=list)  # the labels whose version it has AVAILABLE
    error: str = ""


def fleet_rows(state: FleetState | None, store: ModelStore, model: str) -> list[InstanceRow]:
    """Each instance of the fleet, asked now (GetModelStatus), with the labels of ``models.config`` it serves."""
    report = fleet_status(state, store, timeout_s=STATUS_TIMEOUT_S)
    labels = store.serving(model).labels
    rows = []
    for entry in report.get("instances", []):
        versions = sorted((int(v), s) for v, s in (entry.get("models") or {}).get(model, {}).items())
        available = {v for v, s in versions if s == "AVAILABLE"}
        down = bool(entry.get("error")) or (entry.get("pid") is not None and not entry.get("alive"))
        rows.append(
            InstanceRow(
                name=entry["name"],
                health="down" if down else "ok",
                versions=versions,
                labels=[(label, labels[label]) for label in LABELS if labels.get(label) in available],
                error=str(entry.get("error") or ("its process is not running" if down else "")),
            )
        )
    return rows


def headline(instances: list[InstanceRow], versions: list[VersionRecord], runs: list[RunRecord]) -> Verdict:
    """What an operator asks first: what serves, and how the last run ended."""
    stable = next((v for v in versions if v.stable), None)
    down = [i.name for i in instances if i.health == "down"]
    parts = [f"stable: version {stable.version}" if stable else "no stable version"]
    if instances:
        parts.append(f"{len(instances) - len(down)} of {len(instances)} instances up")
    else:
        parts.append("no serving fleet described")
    reasons = [f"{name} is down" for name in down]
    if runs:
        last = runs[0]
        refused = next((g for g in last.verdicts() if g.verdict == "failed"), None)
        if refused is not None:
            reasons.append(f"last run {last.run_id}: {refused.gate} refused: {refused.reason}")
        elif last.failure:
            reasons.append(f"last run {last.run_id}: {last.failure}")
    return Verdict(None if not down else False, "; ".join(parts), reasons)


def build_console(
    *,
    config: PipelineConfig,
    store: ModelStore,
    fleet: FleetState | None,
    runs: list[RunRecord],
    can_act: bool,
    selected_run: str = "",
    windows: list[WindowRecord] | None = None,
) -> str:
    """The console page of ``config``'s pipeline.

    Args:
        config: the pipeline's configuration (its model's name, the metric it gates on).
        store: the model store.
        fleet: the fleet (``read_fleet_state``), None when none is described.
        runs: the pipeline's runs, newest first (``runs.read_runs``).
        can_act: whether the user may trigger ``<name>_serving`` (buttons only then).
        selected_run: a run to mark (the console opened from a run's page).
        windows: the monitoring windows of served traffic, newest first (``traffic.read_windows``).

    Returns:
        The page (HTML).
    """
    model, metric = config.serving.model_name, config.evaluation.metric
    instances = fleet_rows(fleet, store, model)
    versions = read_versions(store, model, runs, metric=metric)
    return render(
        "console.html",
        title=f"Model console: {config.name}",
        verdict=headline(instances, versions, runs),
        pipeline=config.name,
        model=model,
        metric=metric,
        static=f"{CONSOLE_PREFIX}/static",
        actions_url=f"{CONSOLE_PREFIX}/{config.name}/actions",
        header_name=CONSOLE_HEADER,
        serving_dag=serving_dag_id_for(config.name),
        pipeline_dag=dag_id_for(config.name),
        grid=grid_url,
        instances=instances,
        described=fleet is not None,
        versions=versions,
        runs=runs,
        gates=GATES,
        can_act=can_act,
        selected_run=selected_run,
        chart=trend_chart(runs, metric=metric),
        windows=windows or [],
        monitored=config.serving.request_logging is not None,
    )


def render_index(pipelines: list[str]) -> str:
    """The list of the pipelines the user may read, each a link to its console."""
    return render(
        "console_index.html",
        title="Model console",
        verdict=Verdict(None, f"{len(pipelines)} pipelines" if pipelines else "no pipeline you may read"),
        static=f"{CONSOLE_PREFIX}/static",
        prefix=CONSOLE_PREFIX,
        pipelines=pipelines,
    )

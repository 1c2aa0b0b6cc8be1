"""``runway run NAME --history``: the first run takes the history in, so that the first model trains on the window.

A run ingests one span (TFX's ExampleGen takes one per execution) and trains on the newest ``data.window_spans``
spans ingested so far. On a first run over several years of data that is the newest span alone. With
``--history``, every older span on disk that no run has ingested yet goes through the pipeline first, oldest first,
each in an ingest-only run (run parameter ``ingest_only``: ingested and through the data gate, drift measured
against the span before it, nothing trained or pushed); then the run proper ingests the newest span and trains on
the whole window. When history was taken in, the run proper pushes even if its span is served already (``repush``):
its model was trained on a different window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline_components import boundary
from pipeline_components.cli.bridge import runtime
from pipeline_components.cli.commands import config_path, pipeline_config
from pipeline_components.cli.output import print_summary, say
from pipeline_components.errors import RunwayError
from pipeline_components.settings import Settings

# A run of the DAG (``pipelines.run_dag`` with its parallelism): name, run parameters, progress -> its summary.
RunDag = Callable[..., dict[str, Any]]


def _quiet(line: str) -> None:
    """The progress of an ingest-only run: its start and anything that went wrong, not every task."""
    if "started" in line or " failed" in line or "up_for_retry" in line:
        say("      " + line.strip())


def take_in_history(settings: Settings, name: str, *, conf: dict[str, Any], run: RunDag) -> dict[str, Any]:
    """Ingest, oldest first, every span older than the one this run ingests that no run has ingested yet.

    Args:
        settings: the machine's settings.
        name: the pipeline.
        conf: the run parameters of the run proper (``span`` pins the span it ingests).
        run: runs the DAG once and returns that run's summary.

    Returns:
        The run parameters for the run proper (``repush`` added when history was taken in, unless given).

    Raises:
        RunwayError: an older span was refused (the run's summary says by which task and why).
    """
    config = pipeline_config(settings, name)
    present = boundary.available_spans(config, settings.data_dir)
    if not present:
        return conf
    done = set(runtime(settings, "spans", str(config_path(settings, name)))["ingested"])
    pinned = conf.get("span")
    newest: int = int(pinned) if pinned is not None else max(present)
    older = [span for span in present if span < newest and span not in done]
    say(
        f"      history: spans on disk {present}, ingested by earlier runs {sorted(done) or 'none'}; "
        + (f"ingesting {older} first, oldest first, then {newest}" if older else "nothing older to take in")
    )
    for span in older:
        summary = run(settings, name, conf={**conf, "span": span, "ingest_only": True}, progress=_quiet)
        refused = [t["task_id"] for t in summary["tasks"] if t["state"] == "failed"]
        if summary["returncode"] != 0 or refused:
            print_summary(summary)  # with each failed task's reason
            raise RunwayError(
                f"span {span} was not taken in (failed: {refused}); the newest span was not run. "
                f"Log: {summary['log_path']}"
            )
        say(f"      span {span}: ingested and validated (run {summary['run_id']})")
    return {**conf, "repush": True} if older and "repush" not in conf else conf

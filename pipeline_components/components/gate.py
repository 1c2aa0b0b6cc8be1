"""A custom component's verdict (the gate file) and its page, written the same way by every gate (``GateExecutor``).

The component itself succeeds, so that its output artifacts (results, reports) are published in ML Metadata as
artifacts of the run; ``runtime/node.py`` then reads the verdict back (``read_gate``) and, when it did not pass,
fails the task as a gate (exit code 3, not retried) listing each failure. The verdict's figures become the task's
XComs; its ``report`` is the page the task's "Report" link leads to.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfx.dsl.components.base import base_executor

from pipeline_components.durable import atomic_write
from pipeline_components.reports.render import Verdict, render
from pipeline_components.reports.store import publish_page, write_page

GATE_FILE = "runway_gate.json"


def write_gate(
    artifact_uri: str | Path,
    *,
    passed: bool,
    summary: str,
    failures: list[str] | None = None,
    report: str | None = None,
    figures: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Record a custom component's verdict in one of its output artifacts (``<uri>/runway_gate.json``).

    Args:
        artifact_uri: the output artifact's folder.
        passed: whether the gate lets the run go on.
        summary: the verdict in one line.
        failures: one line per failure (what, observed vs expected).
        report: the page that explains the verdict.
        figures: more key figures, each becomes an XCom of the task.

    Returns:
        The verdict as written.
    """
    gate = {
        "gate_passed": bool(passed),
        "gate_summary": summary,
        "gate_failures": list(failures or []),
        **({"report": report} if report else {}),
        **(figures or {}),
    }
    atomic_write(Path(artifact_uri) / GATE_FILE, json.dumps(gate, indent=2, sort_keys=True, default=str))
    return gate


def read_gate(outputs: dict[str, list[Any]]) -> dict[str, Any]:
    """The verdict a custom component wrote with ``write_gate`` into any of its outputs; {} if none."""
    for artifacts in outputs.values():
        for artifact in artifacts:
            path = Path(artifact.uri) / GATE_FILE
            if path.is_file():
                return dict(json.loads(path.read_text()))
    return {}


Artifacts = dict[str, list[Any]]  # TFX's input_dict / output_dict: key -> artifacts


@dataclass
class GateOutcome:
    """What a gate decided, and the page that explains it.

    Attributes:
        artifact_dir: the output artifact's folder that holds the gate file and the page.
        passed: whether the gate lets the run go on.
        summary: the verdict in one line.
        failures: one line per failure (what, observed vs expected).
        figures: more key figures, each becomes an XCom of the task.
        page: the page (HTML), or None for a verdict without one.
        page_name: its file name in the artifact.
        published_page: the published copy's HTML where it must differ (relative links), else ``page``.
    """

    artifact_dir: str | Path
    passed: bool
    summary: str
    failures: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    page: str | None = None
    page_name: str = "index.html"
    published_page: str | None = None


def record_verdict(context: Any, outcome: GateOutcome, *, suffix: str) -> dict[str, Any]:
    """A gate's verdict and its page: the page into the artifact, the same page beside the node's report page
    (where the task's link reaches it), and the gate file pointing at the published copy.

    Args:
        context: the executor's context (None when the executor is called directly: nothing is published).
        outcome: the verdict and its page.
        suffix: what the page is, for its published name ``<node>.<suffix>.html``.

    Returns:
        The verdict as written.
    """
    report = None
    if outcome.page is not None:
        local = write_page(Path(outcome.artifact_dir) / outcome.page_name, outcome.page)
        published = publish_page(context, outcome.published_page or outcome.page, suffix)
        report = str(published or local)
    return write_gate(
        outcome.artifact_dir,
        passed=outcome.passed,
        summary=outcome.summary,
        failures=outcome.failures,
        report=report,
        figures=outcome.figures,
    )


def checks_page(
    *, title: str, verdict: Verdict, facts: dict[str, Any], notes: list[str], tables: list[dict[str, Any]]
) -> str:
    """A gate's page as facts, notes and tables (``templates/checks.html``), the verdict first.

    Args:
        title: the page's title.
        verdict: what the page says first.
        facts: what was checked, against what (name -> value).
        notes: what was not checked and why.
        tables: each ``{heading, header, rows}``, optionally ``numeric`` (column indexes) and ``text`` (above it).
    """
    shown = [{"numeric": (), "text": "", **table} for table in tables]
    return render("checks.html", title=title, verdict=verdict, facts=list(facts.items()), notes=notes, tables=shown)


class GateExecutor(base_executor.BaseExecutor):
    """The executor of a custom gate: ``judge`` decides, ``Do`` records the verdict and publishes its page."""

    PAGE_SUFFIX = "gate"  # the published page's name: <node>.<suffix>.html

    def Do(self, input_dict: Artifacts, output_dict: Artifacts, exec_properties: dict[str, Any]) -> None:
        record_verdict(self._context, self.judge(input_dict, output_dict, exec_properties), suffix=self.PAGE_SUFFIX)

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        """Run the gate's checks on the node's artifacts; return the verdict (and its page)."""
        raise NotImplementedError

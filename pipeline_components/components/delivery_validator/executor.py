"""Executor of DeliveryValidator: profile the span's raw CSV, pick the previous spans' profiles, judge, one page."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from pipeline_components.components.delivery_validator.profile import (
    Check,
    Profile,
    check_calendar,
    check_label,
    check_rows,
    read_profile,
)
from pipeline_components.components.gate import GATE_FILE, Artifacts, GateExecutor, GateOutcome, checks_page
from pipeline_components.config import DeliveryConfig
from pipeline_components.config.spans import span_files
from pipeline_components.reports.render import Verdict, status_cell

log = logging.getLogger("runway.delivery")
PROFILE_FILE = "profile.json"


def _span(artifact: Any) -> int:
    return int(artifact.get_int_custom_property("span") or artifact.span)


def pick_history(span: int, artifacts: list[Any], history_spans: int) -> list[Profile]:
    """The previous spans' profiles: below ``span``, passed their own check, the newest artifact per span, the
    newest ``history_spans`` spans."""
    newest: dict[int, tuple[int, Profile]] = {}
    for artifact in artifacts:
        folder = Path(artifact.uri)
        try:
            profile = Profile.from_dict(json.loads((folder / PROFILE_FILE).read_text()))
            passed = bool(json.loads((folder / GATE_FILE).read_text()).get("gate_passed"))
        except (OSError, ValueError, TypeError):
            continue  # an execution that never finished writing its profile
        if passed and profile.span < span and (profile.span not in newest or artifact.id > newest[profile.span][0]):
            newest[profile.span] = (artifact.id, profile)
    return [newest[s][1] for s in sorted(newest, reverse=True)[:history_spans]]


def delivery_page(
    *, verdict: Verdict, facts: dict[str, Any], notes: list[str], checks: list[Check], history: list[Profile]
) -> str:
    """The page: the verdict, what was compared with what, every check, the previous spans' profiles."""
    rows = [[c.check, c.observed, c.expected, status_cell(c.passed, "ok", "FAIL")] for c in checks]
    previous = [
        [
            p.span,
            f"{p.rows:,}",
            "-" if p.calendar is None else len(p.calendar),
            ", ".join(f"{value}: {p.share(value):.4f}" for value in p.label_counts),
        ]
        for p in history
    ]
    tables: list[dict[str, Any]] = [
        {"heading": "Checks", "header": ["check", "observed", "expected", "verdict"], "rows": rows}
    ]
    if previous:
        header = ["span", "rows", "calendar values", "label shares"]
        tables.append({"heading": "Previous spans (the expectations)", "header": header, "rows": previous})
    title = f"Delivery — span {facts['span']}"
    return checks_page(title=title, verdict=verdict, facts=facts, notes=notes, tables=tables)


class Executor(GateExecutor):
    PAGE_SUFFIX = "delivery"

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        span = _span(inputs["examples"][0])
        settings = json.loads(properties["settings"])
        delivery = DeliveryConfig(**settings["delivery"])
        label = str(properties["label"])
        artifact = outputs["profile"][0]
        out = Path(artifact.uri)
        out.mkdir(parents=True, exist_ok=True)
        artifact.set_int_custom_property("span", span)
        files = span_files(properties["input_base"], properties["span_pattern"], span)
        facts: dict[str, Any] = {"span": span, "files": ", ".join(str(f) for f in files), "label": label}
        try:
            profile = read_profile(files, span=span, label=label, calendar_column=delivery.calendar_column)
        except KeyError as missing:
            line = f"span {span}: {missing.args[0]}: the label and validation.delivery.calendar_column must be columns"
            summary = "delivery not profiled"
            page = delivery_page(verdict=Verdict(False, summary, [line]), facts=facts, notes=[], checks=[], history=[])
            return GateOutcome(out, passed=False, summary=summary, failures=[line], page=page)
        (out / PROFILE_FILE).write_text(json.dumps(profile.as_dict(), indent=2, default=str))

        history = pick_history(span, list(inputs.get("profile_history") or []), int(settings["history_spans"]))
        notes = []
        if not history:
            notes.append(
                f"span {span} has no earlier span that passed this check: only the absolute row bounds and the "
                "label's presence are checked"
            )
        checks = [
            *check_rows(profile, history, delivery),
            *check_calendar(profile, history, delivery),
            *check_label(
                profile,
                history,
                label=label,
                positive=str(properties["positive"]) or None,
                max_share_change=float(settings["max_share_change"]),
            ),
        ]
        failures = [c.line for c in checks if not c.passed]
        passed = not failures
        summary = (
            f"span {span}: {profile.rows:,} rows, {len(checks)} checks passed"
            if passed
            else f"span {span}: {len(failures)} of {len(checks)} delivery checks failed"
        )
        for note in notes:
            log.info("%s", note)
        facts |= {"rows": f"{profile.rows:,}", "history": ", ".join(str(p.span) for p in history) or "none"}
        return GateOutcome(
            out,
            passed=passed,
            summary=summary,
            failures=failures,
            figures={
                "delivery_rows": profile.rows,
                "delivery_history": [p.span for p in history],
                "label_shares": {value: round(profile.share(value), 4) for value in profile.label_counts},
            },
            page=delivery_page(
                verdict=Verdict(passed, summary, failures), facts=facts, notes=notes, checks=checks, history=history
            ),
        )

"""ModelInspector's executor: inspect, check the declared contract, compare with the served version, record."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from tfx.types import artifact_utils
from tfx.utils import path_utils

from pipeline_components.components.gate import Artifacts, GateExecutor, GateOutcome
from pipeline_components.components.model_inspector.contract import (
    check_declared,
    compare_signatures,
    served_version_dir,
)
from pipeline_components.components.model_inspector.render import to_html, to_markdown
from pipeline_components.components.model_inspector.saved_model import inspect_saved_model, serving_signatures
from pipeline_components.errors import ModelInspectionError

log = logging.getLogger("runway.model_inspector")


def contract_verdict(
    report: dict[str, Any],
    contract: dict[str, Any],
    serving_model_dir: str,
    *,
    allow_breaking_change: bool,
) -> dict[str, Any]:
    """The candidate (``report``) against the declared contract and against the version currently served."""
    candidate = serving_signatures(report)
    declared_failures = check_declared(contract, candidate)
    served = served_version_dir(serving_model_dir) if serving_model_dir else None
    differences: list[dict[str, Any]] = []
    served_error = None
    if served is not None:
        try:
            differences = [
                d.as_dict() for d in compare_signatures(serving_signatures(inspect_saved_model(served)), candidate)
            ]
        except ModelInspectionError as error:
            served_error = f"the served version {served} cannot be inspected: {error}"
    breaking = [d["message"] for d in differences if d["breaking"]]
    if served_error:
        breaking.append(served_error)
    failures = [f"declared contract: {f}" for f in declared_failures]
    if breaking and not allow_breaking_change:
        failures += [f"breaking change vs served version {served.name if served else '-'}: {b}" for b in breaking]
    passed = not failures
    if passed and breaking:
        summary = f"{len(breaking)} breaking change(s) allowed by the run parameter allow_breaking_change=true"
    elif passed:
        summary = "the candidate keeps the serving contract" + (f" of version {served.name}" if served else "")
    else:
        summary = (
            f"the candidate breaks the serving contract ({len(failures)} difference(s)); fix the model or the "
            "configuration's serving.contract, or allow it for this run with allow_breaking_change=true"
        )
    return {
        "passed": passed,
        "summary": summary,
        "failures": failures,
        "declared_failures": declared_failures,
        "differences": differences,
        "breaking_changes": len(breaking),
        "served_version": served.name if served else None,
        "served_path": str(served) if served else None,
        "allow_breaking_change": allow_breaking_change,
    }


class Executor(GateExecutor):
    PAGE_SUFFIX = "model"

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        model = artifact_utils.get_single_instance(inputs["model"])
        inspection = artifact_utils.get_single_instance(outputs["inspection"])
        model_dir = path_utils.serving_model_path(model.uri)
        report = inspect_saved_model(model_dir)
        allow = bool(properties.get("allow_breaking_change", 0))
        verdict = contract_verdict(
            report,
            json.loads(properties.get("contract") or "{}"),
            properties.get("serving_model_dir", ""),
            allow_breaking_change=allow,
        )
        out = Path(inspection.uri)
        out.mkdir(parents=True, exist_ok=True)
        (out / "inspection.json").write_text(json.dumps(report, indent=2, sort_keys=True))
        (out / "contract.json").write_text(json.dumps(verdict, indent=2, sort_keys=True))
        (out / "inspection.md").write_text(to_markdown(report, verdict))

        signatures = sorted(serving_signatures(report))
        recorded: dict[str, Any] = {  # custom properties of the inspection artifact, and the task's XComs
            "contract_passed": int(verdict["passed"]),
            "breaking_changes": verdict["breaking_changes"],
            "allow_breaking_change": int(allow),
            "served_version": verdict["served_version"] or "",
            "signatures": ",".join(signatures),
            "variable_count": report["variables"]["count"],
            "size_bytes": report["size_bytes"],
            "tensorflow_version": report["tensorflow_version"],
        }
        for key, value in recorded.items():
            if isinstance(value, int):
                inspection.set_int_custom_property(key, value)
            else:
                inspection.set_string_custom_property(key, str(value))
        log.info("inspected %s: %s", model_dir, verdict["summary"])
        return GateOutcome(
            out,
            passed=verdict["passed"],
            summary=verdict["summary"],
            failures=verdict["failures"],
            figures={**recorded, "contract_passed": verdict["passed"], "allow_breaking_change": allow},
            page=to_html(report, verdict),
            page_name="inspection.html",
        )

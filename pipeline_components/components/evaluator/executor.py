"""Executor of runway's Evaluator: TFX's Evaluator (TFMA) on the new span and on the trusted set, one verdict.

TFX's own executor runs twice, unchanged: once on the new span's 'eval' split into ``evaluation`` (its blessing
into ``blessing``, as TFX writes it), once on the trusted set into ``trusted_evaluation`` (its blessing into a
scratch folder). ``verdict.decide`` then judges both, the blessing is rewritten to say so (``blessed`` 1/0, TFX's
``BLESSED``/``NOT_BLESSED`` file, ``refused_by``, ``trusted_spans``) and the verdict and page are written.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from tfx.components.evaluator import constants
from tfx.components.evaluator import executor as tfx_evaluator
from tfx.types import standard_artifacts

from pipeline_components.components.evaluator.results import VERDICT_FILE, evaluation_summary
from pipeline_components.components.evaluator.verdict import (
    EvaluationVerdict,
    decide,
    evaluation_page,
    thresholds_of,
    with_metric_names,
)
from pipeline_components.reports.store import publish_page, write_page

log = logging.getLogger("runway.evaluator")


def _span(artifact: Any) -> int:
    return int(artifact.get_int_custom_property("span") or artifact.span)


def _mark(blessing: Any, verdict: EvaluationVerdict) -> None:
    """The blessing as the verdict has it: TFX's marker file and ``blessed`` property, and why."""
    folder = Path(blessing.uri)
    for name in (constants.BLESSED_FILE_NAME, constants.NOT_BLESSED_FILE_NAME):
        (folder / name).unlink(missing_ok=True)
    (folder / (constants.BLESSED_FILE_NAME if verdict.blessed else constants.NOT_BLESSED_FILE_NAME)).write_text("")
    blessing.set_int_custom_property(
        constants.ARTIFACT_PROPERTY_BLESSED_KEY,
        constants.BLESSED_VALUE if verdict.blessed else constants.NOT_BLESSED_VALUE,
    )
    blessing.set_string_custom_property("refused_by", ", ".join(verdict.refused_by))
    blessing.set_string_custom_property("trusted_spans", ",".join(str(s) for s in verdict.trusted_spans))


class Executor(tfx_evaluator.Executor):
    def Do(
        self, input_dict: dict[str, list[Any]], output_dict: dict[str, list[Any]], exec_properties: dict[str, Any]
    ) -> None:
        exec_properties = {**exec_properties, "eval_config": with_metric_names(exec_properties["eval_config"])}
        models = {key: input_dict[key] for key in ("model", "baseline_model") if input_dict.get(key)}
        span = _span(input_dict["examples"][0])
        new_out = {"evaluation": output_dict["evaluation"], "blessing": output_dict["blessing"]}
        super().Do({**models, "examples": input_dict["examples"]}, new_out, exec_properties)
        new_span = evaluation_summary(output_dict["evaluation"][0].uri)

        notes: list[str] = []
        trusted = [a for a in input_dict.get("trusted_examples") or [] if _span(a) != span]
        if len(trusted) < len(input_dict.get("trusted_examples") or []):
            notes.append(f"span {span} left out of the trusted set: it is the span being judged")
        trusted_summary = None
        if not trusted:
            notes.append(
                "no trusted set: no model has been blessed yet, or evaluation.trusted_spans is 0"
                if not input_dict.get("trusted_examples")
                else "no trusted set besides the new span"
            )
        elif "baseline_model" not in models:
            notes.append("no served model to compare with on the trusted set")
            trusted = []
        if trusted:
            scratch = standard_artifacts.ModelBlessing()
            scratch.uri = tempfile.mkdtemp(prefix="trusted-blessing-")
            try:
                trusted_out = {"evaluation": output_dict["trusted_evaluation"], "blessing": [scratch]}
                super().Do({**models, "examples": trusted}, trusted_out, exec_properties)
            finally:
                shutil.rmtree(scratch.uri, ignore_errors=True)
            trusted_summary = evaluation_summary(output_dict["trusted_evaluation"][0].uri)

        limits = thresholds_of(
            exec_properties["eval_config"],
            exec_properties.get("max_baseline_drop"),
            exec_properties.get("trusted_max_regression"),
            (exec_properties.get("min_label_ratio"), exec_properties.get("max_label_ratio")),
        )
        verdict = decide(
            span=span,
            new_span=new_span,
            trusted=trusted_summary,
            trusted_spans=sorted(_span(a) for a in trusted),
            limits=limits,
            notes=notes,
        )
        blessing = output_dict["blessing"][0]
        _mark(blessing, verdict)
        facts = {
            "candidate": models["model"][0].uri,
            "served model (baseline)": models["baseline_model"][0].uri if "baseline_model" in models else "none",
            "new span": span,
            "trusted set": ", ".join(f"span {_span(a)}: {a.uri}" for a in trusted) or "none",
        }
        page = evaluation_page(verdict, facts)
        local = write_page(Path(output_dict["evaluation"][0].uri) / "index.html", page)
        published = publish_page(self._context, page, "evaluation")
        document = {**verdict.as_dict(), "report": str(published or local)}
        (Path(blessing.uri) / VERDICT_FILE).write_text(json.dumps(document, indent=2, default=str))
        for line in [*notes, *verdict.failures]:
            log.info("%s", line)

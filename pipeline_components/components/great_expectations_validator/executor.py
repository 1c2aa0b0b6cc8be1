"""Executor of GreatExpectationsValidator: the suite on the span's raw CSV, Data Docs, one verdict."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline_components.components.gate import Artifacts, GateExecutor, GateOutcome
from pipeline_components.config import fill_span, span_folder_regex
from pipeline_components.config.spans import span_files
from pipeline_components.errors import DataError
from pipeline_components.reports.render import Verdict, render
from pipeline_components.reports.store import page_path

log = logging.getLogger("runway.expectations")


@dataclass
class SuiteOutcome:
    """What one run of the suite found; ``failures`` are the lines the task log and the gate list."""

    passed: bool
    evaluated: int
    failures: list[str] = field(default_factory=list)
    rows: int = 0
    result: dict[str, Any] = field(default_factory=dict)


def _digest(files: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.name):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def duplicated_spans(input_base: str | Path, span_pattern: str, files: list[Path]) -> list[str]:
    """The other span folders whose files hold exactly the same bytes as ``files`` (a re-delivered span)."""
    base = Path(input_base)
    folder_regex = span_folder_regex(span_pattern)
    own_folders = {f.parent for f in files}
    by_folder: dict[Path, list[Path]] = {}
    for path in base.glob(fill_span(span_pattern)):
        by_folder.setdefault(path.parent, []).append(path)
    mine = _digest(files)
    sizes = sum(f.stat().st_size for f in files)
    same = []
    for folder, others in sorted(by_folder.items()):
        if folder in own_folders or not folder_regex.match(folder.relative_to(base).parts[0]):
            continue
        if sum(f.stat().st_size for f in others) == sizes and _digest(others) == mine:
            same.append(folder.name)
    return same


def load_suite(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"expectation suite {path} does not exist; write it (see docs/data-validation.md) or generate a draft "
            "with `python -m pipeline_components.components.great_expectations_validator.suite CONFIG`"
        )
    suite = json.loads(path.read_text())
    if not isinstance(suite, dict) or not isinstance(suite.get("expectations"), list):
        raise DataError(f"{path} is not an expectation suite (a JSON object with 'name' and 'expectations')")
    return suite


def _short(values: list[Any], limit: int = 5) -> str:
    unique: list[Any] = []
    for value in values:
        if value not in unique:
            unique.append(value)
    shown = ", ".join(repr(v) for v in unique[:limit])
    return shown + (", ..." if len(unique) > limit else "")


def _number(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


def describe_failure(item: dict[str, Any]) -> str:
    """One readable line per failing expectation: column, expectation, observed vs expected."""
    config = item.get("expectation_config", {})
    kind = config.get("type", "?")
    kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
    result = item.get("result", {}) or {}
    column = kwargs.get("column") or ",".join(kwargs.get("column_list", [])[:3]) or "(table)"
    where = f"{kwargs['column']}: " if "column" in kwargs else ""
    exception = item.get("exception_info", {}) or {}
    # One dict, or (when several metrics failed) one dict per metric.
    infos = [exception] if "raised_exception" in exception else [v for v in exception.values() if isinstance(v, dict)]
    raised = [str(i.get("exception_message") or "") for i in infos if i.get("raised_exception")]
    if raised or not result:
        message = raised[0].splitlines()[0][:200] if raised and raised[0] else "no result"
        return f"{where or column + ': '}{kind} could not be evaluated: {message}"
    observed = result.get("observed_value")
    unexpected = result.get("unexpected_count")
    percent = float(result.get("unexpected_percent") or 0.0)
    mostly = kwargs.get("mostly")
    allowed = f" (at most {100 * (1 - mostly):.2g} % allowed)" if mostly not in (None, 1, 1.0) else ""
    if kind == "expect_table_columns_to_match_ordered_list":
        expected = list(kwargs.get("column_list", []))
        found = list(observed or [])
        missing = [c for c in expected if c not in found]
        extra = [c for c in found if c not in expected]
        if missing or extra:
            parts = [
                f"missing column(s) {missing}" if missing else "",
                f"unexpected column(s) {extra}" if extra else "",
            ]
            return f"columns: {'; '.join(p for p in parts if p)} (expected {expected})"
        first = next(i for i, (a, b) in enumerate(zip(found, expected, strict=True)) if a != b)
        return (
            f"columns: header order differs from the suite at position {first}: found `{found[first]}`, "
            f"expected `{expected[first]}` (found order {found})"
        )
    if kind == "expect_table_row_count_to_be_between":
        low, high = _number(kwargs.get("min_value")), _number(kwargs.get("max_value"))
        return f"rows: {observed} (expected between {low} and {high})"
    if kind == "expect_column_values_to_be_in_type_list":
        if observed is None and unexpected is not None:  # an object column: GX checks each value's type
            return (
                f"{where}{unexpected} values ({percent:.2f} %) are not of type {kwargs.get('type_list')}, "
                f"e.g. {_short(result.get('partial_unexpected_list', []))}"
            )
        return f"{where}type {observed} (expected one of {kwargs.get('type_list')})"
    if kind == "expect_column_values_to_be_in_set":
        return (
            f"{where}{unexpected} values ({percent:.2f} %) not in the allowed set{allowed}: "
            f"{_short(result.get('partial_unexpected_list', []))} (allowed: {sorted(kwargs.get('value_set', []))})"
        )
    if kind == "expect_column_values_to_be_between":
        return (
            f"{where}{unexpected} values ({percent:.2f} %) outside [{_number(kwargs.get('min_value'))}, "
            f"{_number(kwargs.get('max_value'))}]{allowed}, e.g. {_short(result.get('partial_unexpected_list', []))}"
        )
    if kind == "expect_column_values_to_not_be_null":
        return f"{where}{unexpected} nulls ({percent:.2f} % of rows){allowed}"
    if kind == "expect_compound_columns_to_be_unique":
        return f"rows: {unexpected} rows ({percent:.2f} %) repeat another row over {column} ...{allowed}"
    details = {k: v for k, v in result.items() if k in ("observed_value", "unexpected_count", "unexpected_percent")}
    return f"{where}{kind} failed: observed {details} (expected {kwargs})"


def run_suite(files: list[Path], suite: dict[str, Any], docs_dir: Path | None = None) -> SuiteOutcome:
    """Run ``suite`` on the CSV ``files`` (one DataFrame) with an ephemeral GX context; build Data Docs into
    ``docs_dir`` when given."""
    import great_expectations as gx
    import pandas as pd

    frames = []
    for path in files:
        try:
            frames.append(pd.read_csv(path, low_memory=False))
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            return SuiteOutcome(False, 0, [f"{path.name}: not a readable CSV file ({err})"])
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    context = gx.get_context(mode="ephemeral")
    if docs_dir is not None:
        context.add_data_docs_site(
            "runway",
            {
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    batch = (
        context.data_sources.add_pandas("runway")
        .add_dataframe_asset(name="span")
        .add_batch_definition_whole_dataframe("whole_span")
    )
    expectations = [{k: v for k, v in e.items() if k not in ("id", "rendered_content")} for e in suite["expectations"]]
    gx_suite = context.suites.add(
        gx.ExpectationSuite(name=str(suite.get("name", "suite")), expectations=expectations, meta=suite.get("meta"))
    )
    definition = context.validation_definitions.add(gx.ValidationDefinition(name="span", data=batch, suite=gx_suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs")] if docs_dir is not None else []
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(
            name="runway_gate",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20},
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": frame})
    results = [run.to_json_dict() for run in outcome.run_results.values()]
    items = [item for run in results for item in run.get("results", [])]
    failures = [describe_failure(item) for item in items if not item.get("success")]
    return SuiteOutcome(
        passed=not failures,
        evaluated=len(items),
        failures=failures,
        rows=len(frame),
        result=results[0] if len(results) == 1 else {"runs": results},
    )


def expectations_page(*, span: int, verdict: Verdict, facts: dict[str, Any], docs: str) -> str:
    """The page: the verdict with each failing expectation, the span and suite checked, a link to Data Docs."""
    return render(
        "expectations.html",
        title=f"Great Expectations — span {span}",
        verdict=verdict,
        facts=list(facts.items()),
        docs=docs,
    )


class Executor(GateExecutor):
    PAGE_SUFFIX = "expectations"

    def judge(self, inputs: Artifacts, outputs: Artifacts, properties: dict[str, Any]) -> GateOutcome:
        examples = inputs["examples"][0]
        span = int(examples.get_int_custom_property("span") or examples.span)
        out = Path(outputs["result"][0].uri)
        out.mkdir(parents=True, exist_ok=True)
        suite_path = Path(properties["suite_file"])
        suite = load_suite(suite_path)
        (out / "suite.json").write_text(json.dumps(suite, indent=2))
        files = span_files(properties["input_base"], properties["span_pattern"], span)

        failures: list[str] = []
        copies = duplicated_spans(properties["input_base"], properties["span_pattern"], files)
        if copies:
            failures.append(
                f"span {span} ({files[0].parent.name}): same data as {', '.join(copies)} (identical bytes): a "
                "duplicated span; deliver the span's own data"
            )
        docs_dir = out / "data_docs"
        outcome = run_suite(files, suite, docs_dir)
        failures += outcome.failures
        (out / "validation_result.json").write_text(json.dumps(outcome.result, indent=2, default=str))

        published = page_path(self._context, self.PAGE_SUFFIX)
        published_docs = ""
        if published is not None and docs_dir.is_dir():  # Data Docs beside the published page, for its link
            target = published.parent / f"{published.name.removesuffix('.expectations.html')}_data_docs"
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(docs_dir, target)
            published_docs = f"{target.name}/index.html"
        local_docs = "data_docs/index.html" if (docs_dir / "index.html").is_file() else ""
        passed = not failures
        verdict = (
            f"{outcome.evaluated} expectations passed on {outcome.rows} rows"
            if passed
            else f"{len(failures)} failed (of {outcome.evaluated} expectations, {outcome.rows} rows)"
        )
        facts = {
            "span": span,
            "files": ", ".join(str(f) for f in files),
            "suite": f"{suite_path} (sha256 {hashlib.sha256(suite_path.read_bytes()).hexdigest()[:12]})",
            "rows": outcome.rows,
        }
        for line in failures:
            log.info("failed: %s", line)
        summary = f"Great Expectations suite '{suite.get('name')}': {verdict}"
        page = functools.partial(expectations_page, span=span, verdict=Verdict(passed, summary, failures), facts=facts)
        return GateOutcome(
            out,
            passed=passed,
            summary=summary,
            failures=failures,
            figures={"expectations_evaluated": outcome.evaluated, "expectations_failed": len(failures)},
            page=page(docs=local_docs),
            published_page=page(docs=published_docs or local_docs),
        )

"""The run's pre-flight check: the configuration against the span it is about to ingest, before any node runs.

``check_params`` (the first task of every run) calls ``preflight``: it reads the span's CSV files with the ``csv``
module (a second, in the orchestrator environment) and the committed schema as text, and refuses the run with one
line per problem, each naming the column or key and what to do:

- a feature the configuration lists is not in the span (Transform would stop with a ``KeyError``);
- the span has a column the configuration does not list (the served model would require it as an input);
- a numeric feature holds text; the label holds text while ``label.values`` is ``index`` (Transform would fail to
  cast it), or a name that is not one of ``label.classes``, or an index out of range;
- the committed schema lacks a feature or types it differently (``runway schema NAME`` regenerates it);
- the expectation suite is missing.

Nothing here imports pandas, TFX or Airflow.
"""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path

from pipeline_components.config import PipelineConfig, fill_span
from pipeline_components.errors import ConfigError

MAX_ROWS = 100_000  # rows read per span: enough to find a wrong type, cheap for the first task of a run
_SCHEMA_LINE = re.compile(r'^\s*(name|type):\s*"?([^"]*)"?\s*$')


def schema_types(path: Path) -> dict[str, str]:
    """Feature name -> TFDV type (INT, FLOAT, BYTES) from a schema in text format (``schema.pbtxt``)."""
    types: dict[str, str] = {}
    depth, in_feature, name, kind = 0, False, None, None
    for line in path.read_text().splitlines():
        if depth == 0:  # a top-level block starts: a feature, or something else (a string_domain also has a name)
            in_feature, name, kind = line.strip().startswith("feature {"), None, None
        elif depth == 1 and in_feature and (match := _SCHEMA_LINE.match(line)):
            if match.group(1) == "name":
                name = match.group(2)
            else:
                kind = match.group(2)
        depth += line.count("{") - line.count("}")
        if depth == 0 and in_feature and name is not None:
            types[name] = kind or "?"
            in_feature = False
    return types


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _span_rows(files: list[Path]) -> tuple[list[str], list[tuple[Path, int, dict[str, str]]]]:
    """The first file's header, and up to ``MAX_ROWS`` rows of every file (file, line number, row)."""
    header: list[str] = []
    rows: list[tuple[Path, int, dict[str, str]]] = []
    for path in files:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            reader = csv.DictReader(handle)
            header = header or list(reader.fieldnames or [])
            try:
                for row in itertools.islice(reader, MAX_ROWS - len(rows)):
                    rows.append((path, reader.line_num, row))
            except csv.Error:
                pass  # a broken file is ExampleGen's CSV pre-check's to refuse, with the line (runtime/csv_check.py)
    return header, rows


def _label_problems(config: PipelineConfig, rows: list[tuple[Path, int, dict[str, str]]]) -> list[str]:
    label = config.label
    seen: dict[str, tuple[Path, int]] = {}
    for path, line, row in rows:
        value = row.get(label.column)
        if value not in (None, "") and value not in seen:
            seen[value] = (path, line)
    where = {value: f"line {line} of {path.name}" for value, (path, line) in seen.items()}
    if label.values == "name":
        unknown = [value for value in seen if value not in label.classes]
        return [
            f"label '{label.column}' holds {value!r} ({where[value]}), not one of label.classes {label.classes}: "
            "fix the span, or add the class to label.classes"
            for value in unknown[:3]
        ]
    text = sorted(value for value in seen if not re.fullmatch(r"-?\d+(\.0*)?", value))
    if text:
        shown = ", ".join(repr(v) for v in text[:4])
        classes = "[" + ", ".join(sorted(seen))[:80] + "]"
        return [
            f"label '{label.column}' holds text ({shown}; first on {where[text[0]]}) but label.values is 'index' "
            f"(0/1, or the class index): set label.values: name and label.classes: {classes} in index order "
            "(`runway init` writes both)"
        ]
    top = label.num_classes - 1
    outside = [value for value in seen if not 0 <= int(float(value)) <= top]
    return [
        f"label '{label.column}' holds {value} ({where[value]}), outside 0..{top} for a {label.kind} label with "
        f"{label.num_classes} classes: fix the span, or label.kind/label.classes"
        for value in outside[:3]
    ]


def check_span(config: PipelineConfig, files: list[Path]) -> list[str]:
    """Problems of one span's CSV files against the configuration, one line each (empty: it fits)."""
    header, rows = _span_rows(sorted(files))
    where = f"{files[0].parent.name}/{files[0].name}" if files else "the span"
    problems = []
    listed = {name: "features.numeric" for name in config.features.numeric}
    listed |= {name: "features.categorical" for name in config.features.categorical}
    for name, key in listed.items():
        if name not in header:
            problems.append(
                f"column '{name}' ({key}) is missing from {where}: re-deliver the span with it, or remove it from "
                f"{key} and regenerate the schema (`runway schema {config.name}`)"
            )
    if config.label.column not in header:
        problems.append(f"the label column '{config.label.column}' (label.column) is missing from {where}")
    for name in header:
        if name not in listed and name != config.label.column:
            problems.append(
                f"column '{name}' of {where} is not in the configuration (the served model would require it): add "
                f"it to features.numeric or features.categorical and run `runway schema {config.name}`, or leave it "
                "out of the span's files"
            )
    for name in config.features.numeric:
        bad = next(((p, n, r[name]) for p, n, r in rows if r.get(name) and not _is_number(r[name])), None)
        if bad is not None:
            problems.append(
                f"column '{name}' (features.numeric) holds text ({bad[2]!r} on line {bad[1]} of {bad[0].name}): "
                "move it to features.categorical, or fix the span"
            )
    if config.label.column in header:
        problems += _label_problems(config, rows)
    return problems


def check_schema(config: PipelineConfig) -> list[str]:
    """Problems of the committed schema against the configuration (a feature it lacks or types differently)."""
    if not config.schema_path.is_file():
        return [f"schema_file: {config.schema_path} does not exist; generate it with `runway schema {config.name}`"]
    types = schema_types(config.schema_path)
    fix = f"regenerate it with `runway schema {config.name}` and review the diff"
    problems = [
        f"schema_file has no feature '{name}' that the configuration names; {fix}"
        for name in (*config.features.all, config.label.column)
        if name not in types
    ]
    problems += [
        f"schema_file types '{name}' as text (BYTES), but features.numeric lists it; {fix}, or move it to "
        "features.categorical"
        for name in config.features.numeric
        if types.get(name) == "BYTES"
    ]
    if config.label.values == "index" and types.get(config.label.column) == "BYTES":
        problems.append(
            f"schema_file types the label '{config.label.column}' as text (BYTES), but label.values is 'index': set "
            "label.values: name with label.classes, or regenerate the schema from spans that hold indices"
        )
    return problems


def preflight(config: PipelineConfig, data_dir: Path, span: int | None, spans: list[int]) -> list[str]:
    """Check the configuration, its schema and suite, and the span the run ingests; return the lines it checked.

    Args:
        config: the pipeline's configuration.
        data_dir: the data directory (``<data dir>/<data.folder>/<span folder>``).
        span: the span the run ingests (None: the newest).
        spans: the spans present (``boundary.check_against_data``).

    Raises:
        ConfigError: one line saying why (the first problem and how many more), then every problem on its own line.
    """
    number = span if span is not None else max(spans)
    files = sorted((data_dir / config.data.folder).glob(fill_span(config.data.span_pattern, number)))
    # The span's own problems first: the first line of the refusal is the one the run's summary shows.
    problems = check_span(config, files) if files else []
    problems += check_schema(config)
    if not config.expectations_path.is_file():
        problems.append(
            f"validation.expectations_file: the expectation suite {config.expectations_path} does not exist; draft "
            f"it (`python -m pipeline_components.components.great_expectations_validator.suite "
            f"{config.source}`; `runway init` writes one) and review it"
        )
    if problems:
        more = f" (+{len(problems) - 1} more below)" if len(problems) > 1 else ""
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise ConfigError(f"{config.name}, span {number}: {problems[0]}{more}\n{listing}")
    return [f"span {number}: {len(files)} file(s) fit the configuration, schema and suite of {config.name}"]

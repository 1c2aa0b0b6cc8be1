"""The configuration ``runway init`` writes: complete, valid, and commented with the reason for every choice.

``render_config`` turns the decisions of ``profile.py`` (and the dtypes of the inferred schema, for the serving
contract) into the YAML text of ``configs/<name>.yaml``; ``model_settings`` sizes the training to the data. Plain
text, so that the comments survive: a person reads this file before changing it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from pipeline_components.data.csv_source import SPAN_PATTERN
from pipeline_components.data.profile import ColumnChoice, LabelChoice

COMMENT_AT = 34  # the column where end-of-line comments start
EPOCHS = 10  # training passes over the rows of every span
# The TFDV schema's types as serving signature dtypes (what the raw-feature signature takes; models/tabular.py).
SCHEMA_DTYPES = {"INT": "int64", "FLOAT": "float32", "BYTES": "string"}
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Source:
    """Where the data came from and how it splits into spans."""

    path: Path
    span_column: str | None
    spans: dict[int, int]  # span -> complete rows written
    rows: int  # rows of the source
    written_as: str = ""  # data.source as the configuration says it (relative to the configuration's folder)


def yaml_scalar(text: str) -> str:
    """``text`` as a YAML scalar that reads back as the same string (``no`` or ``1`` would not, unquoted)."""
    if _PLAIN.match(text) and yaml.safe_load(text) == text:
        return text
    return json.dumps(text)


def model_settings(train_rows: int) -> dict[str, int]:
    """Batch size and steps for about ``EPOCHS`` passes over the training rows (bounded: minutes, not hours)."""
    batch = 32 if train_rows < 2_000 else 128 if train_rows < 20_000 else 256
    steps = min(5_000, max(200, math.ceil(EPOCHS * train_rows / batch / 50) * 50))
    return {"batch_size": batch, "train_steps": steps, "eval_steps": max(5, min(50, train_rows // (4 * batch)))}


def _line(text: str, comment: str = "") -> str:
    # YAML needs a space before '#' for it to start a comment: long lines get two.
    return f"{text:<{max(COMMENT_AT, len(text) + 2)}}# {comment}" if comment else text


def _features(columns: list[ColumnChoice]) -> list[str]:
    lines = ["features:"]
    for role, what in (
        ("numeric", "numbers: scaled to z-scores"),
        ("categorical", "text or integer codes: a vocabulary, then an embedding"),
    ):
        chosen = [c for c in columns if c.role == role]
        lines.append(_line(f"  {role}:" + ("" if chosen else " []"), what))
        lines += [_line(f"    - {yaml_scalar(c.name)}", c.reason) for c in chosen]
    left_out = [c for c in columns if c.role == "left_out"]
    if left_out:
        lines.append("# Left out (add one to a list above to use it; then `runway schema NAME` and review the diff):")
        lines += [f"#   {c.name}: {c.reason}" for c in left_out]
    return lines


def _label(label: LabelChoice) -> list[str]:
    classes = "[" + ", ".join(yaml_scalar(c) for c in label.classes) + "]"
    lines = [
        "label:",
        _line(f"  column: {yaml_scalar(label.column)}", label.reason),
        _line(f"  kind: {label.kind}", "binary: P(positive class); multiclass: one probability per class"),
        _line(
            f"  values: {label.values}",
            "the column holds the class names below; Transform maps them to 0..K-1"
            if label.values == "name"
            else "the column holds the class index (0/1 for binary)",
        ),
    ]
    if label.classes:
        lines.append(_line(f"  classes: {classes}", "in index order; served answers (serving_classify) name them"))
    counts = ", ".join(f"{name} {count}" for name, count in label.counts.items())
    lines.append(f"  # rows per value when this was written: {counts}")
    return lines


def _contract(dtypes: dict[str, str]) -> list[str]:
    lines = [
        _line("  contract:", "what callers rely on: a push that breaks it is refused (docs/models.md)"),
        "    signatures:",
        _line("      serving_default:", "raw features, one per input: REST predict (row or columnar JSON)"),
        "        inputs:",
    ]
    lines += [f"          {yaml_scalar(name)}: {dtype}" for name, dtype in dtypes.items()]
    lines += [
        "        outputs: [probabilities]",
        _line("      serving_tf_example:", "serialized tf.Example (TFMA, warmup, batch clients)"),
        "        inputs: {examples: string}",
        "        outputs: [probabilities]",
        _line("      serving_classify:", "TF Serving's Classify API: classes and their scores"),
        "        inputs: {inputs: string}",
        "        outputs: [classes, scores]",
        _line("      serving_regress:", "TF Serving's Regress API"),
        "        inputs: {inputs: string}",
        "        outputs: [outputs]",
    ]
    return lines


def render_config(
    *,
    name: str,
    source: Source,
    columns: list[ColumnChoice],
    label: LabelChoice,
    dtypes: dict[str, str] | None = None,
) -> str:
    """The configuration's YAML text.

    Args:
        name: the pipeline's name (also its data folder, serving model name, schema and suite file names).
        source: the CSV source and the spans it gave.
        columns: every column's role and reason (``profile.choose_columns``).
        label: the label's kind, values and classes (``profile.choose_label``).
        dtypes: feature -> serving dtype, from the inferred schema; None leaves the contract out (a first pass that
            only needs a valid configuration to infer the schema with).

    Returns:
        YAML that ``load_pipeline_config`` accepts, with a comment on every choice.
    """
    spans = sorted(source.spans)
    written = sum(source.spans.values())
    model = model_settings(written * 4 // 5)
    binary = label.kind == "binary"
    metric, bound, regression = ("auc", 0.6, 0.01) if binary else ("sparse_categorical_accuracy", 0.0, 0.02)
    if not binary:  # better than always answering the most common class
        bound = math.floor(100 * max(label.counts.values()) / max(1, sum(label.counts.values()))) / 100
    span_note = (
        f"its integer values number the spans: {', '.join(map(str, spans))}"
        if source.span_column
        else "no span column: the whole file is span 1"
    )
    lines = [
        f"# {name}: written by `runway init` on {date.today().isoformat()} from {source.path}",
        f"# ({source.rows} rows; {written} complete rows in {len(spans)} span(s)). Every choice says why; change any,",
        f"# then `runway schema {name}` if the features or the label changed, and `runway run {name}`.",
        f"name: {name}",
        f"description: {json.dumps(f'{label.column} from {source.path.name} ({label.kind}), written by runway init')}",
        "",
        "data:",
        _line("  preparer: csv", f"your CSV: `runway data prepare {name}` writes the spans again from it"),
        f"  source: {json.dumps(source.written_as or str(source.path))}",
        _line(f"  span_column: {yaml_scalar(source.span_column) if source.span_column else 'null'}", span_note),
        _line(f"  folder: {name}", f"<data dir>/{name}/span-<N>/data.csv"),
        f'  span_pattern: "{SPAN_PATTERN}"',
        _line(
            f"  window_spans: {len(spans)}",
            f"train on the newest {len(spans)} ingested span(s): all there are now; lower it to forget old data",
        ),
        _line("  train_buckets: 4", "80 % of each span trains ..."),
        _line("  eval_buckets: 1", "... 20 % evaluates"),
        "",
        *_features(columns),
        "",
        *_label(label),
        "",
        "model:",
        "  hidden_units: [64, 32]",
        "  embedding_dim: 8",
        "  learning_rate: 0.001",
        _line(f"  batch_size: {model['batch_size']}", f"sized to the data ({written} complete rows)"),
        _line(f"  train_steps: {model['train_steps']}", f"about {EPOCHS} passes over the training rows"),
        f"  eval_steps: {model['eval_steps']}",
        "",
        "evaluation:",
        _line(
            f"  metric: {metric}",
            "area under the ROC curve (0.5 is chance)" if binary else "share of rows given the right class",
        ),
        _line(
            f"  lower_bound: {bound}",
            "never bless a model below this; raise it once you know what yours reaches"
            if binary
            else "what always answering the most common class reaches",
        ),
        _line(f"  max_regression: {regression}", "at most this much worse than the model served now"),
        "",
        "serving:",
        _line(f"  model_name: {name}", f"<model store>/{name}/<version>/"),
        *(_contract(dtypes) if dtypes is not None else []),
        "",
        _line(f"schema_file: schemas/{name}/schema.pbtxt", "inferred from the spans by `runway init`: review it"),
        "validation:",
        _line(f"  expectations_file: expectations/{name}.json", "drafted by `runway init`: review it"),
        "  # drift: {FEATURE: 0.1}        # thresholds per feature once you know how your spans move",
        "enable_cache: false",
        "# tflite: {variants: [float32, int8]}   # on-device variants beside each pushed version (docs/tflite.md)",
    ]
    return "\n".join(lines) + "\n"

"""Draft a pipeline's expectation suite from its prepared spans, on purpose (like ``runway schema`` for TFDV).

    .venv-runtime/bin/python -m pipeline_components.components.great_expectations_validator.suite configs/flights.yaml

writes ``configs/expectations/flights.json``: the columns in order, a type per column, observed numeric ranges,
the allowed values of the categorical features and the label, null rates and row uniqueness. Rows per span are not
the suite's: DeliveryValidator expects them from the previous spans (``validation.delivery``). Review the diff
(widen a range, drop a too-strict set) and commit it: the pipeline runs the committed file, never a re-inferred one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from pipeline_components.config import PipelineConfig, fill_span, load_pipeline_config
from pipeline_components.errors import DataError
from pipeline_components.settings import Settings

MAX_SET = 40  # categorical columns with more distinct values get no allowed set (e.g. 100+ destinations)


def _e(kind: str, **kwargs: Any) -> dict[str, Any]:
    meta = kwargs.pop("meta", None)
    return {"type": kind, "kwargs": kwargs, **({"meta": meta} if meta else {})}


def draft_suite(config: PipelineConfig, data_dir: Path) -> dict[str, Any]:
    import pandas as pd

    files = sorted((data_dir / config.data.folder).glob(fill_span(config.data.span_pattern)))
    if not files:
        raise DataError(f"no span files under {data_dir / config.data.folder}; run `runway data prepare` first")
    per_span = {f.parent.name: pd.read_csv(f) for f in files}
    frame = pd.concat(per_span.values(), ignore_index=True)
    columns = list(frame.columns)
    expectations = [_e("expect_table_columns_to_match_ordered_list", column_list=columns)]
    categorical = set(config.features.categorical) | {config.label.column}
    for column in columns:
        series = frame[column]
        null_rate = float(series.isna().mean())
        mostly = 1.0 if null_rate == 0 else round(max(0.0, 1 - max(2 * null_rate, null_rate + 0.02)), 3)
        expectations.append(
            _e("expect_column_values_to_not_be_null", column=column, **({"mostly": mostly} if mostly < 1 else {}))
        )
        if pd.api.types.is_numeric_dtype(series):
            expectations.append(
                _e("expect_column_values_to_be_in_type_list", column=column, type_list=["int64", "float64"])
            )
        else:
            expectations.append(_e("expect_column_values_to_be_in_type_list", column=column, type_list=["str"]))
        values = sorted(series.dropna().unique().tolist())
        if column in categorical and len(values) <= MAX_SET:
            expectations.append(_e("expect_column_values_to_be_in_set", column=column, value_set=values))
        elif pd.api.types.is_numeric_dtype(series):
            expectations.append(
                _e(
                    "expect_column_values_to_be_between",
                    column=column,
                    min_value=float(series.min()),
                    max_value=float(series.max()),
                )
            )
    duplicated = float(frame.duplicated().mean())
    expectations.append(
        _e(
            "expect_compound_columns_to_be_unique",
            column_list=columns,
            mostly=round(max(0.9, 1 - max(5 * duplicated, 0.01)), 3),
            meta={"notes": f"{100 * duplicated:.2f} % of rows repeat another row in the real data"},
        )
    )
    return {
        "name": config.name,
        "meta": {"notes": f"drafted from {len(files)} spans by great_expectations_validator.suite; reviewed"},
        "expectations": expectations,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="pipeline configuration (configs/NAME.yaml)")
    parser.add_argument("--out", help="where to write the suite (default: the configuration's expectations file)")
    args = parser.parse_args(argv)
    config = load_pipeline_config(args.config, require_schema=False)
    suite = draft_suite(config, Settings.from_env().data_dir)
    out = Path(args.out) if args.out else config.expectations_path
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(suite, indent=2) + "\n")
    print(f"wrote {out} ({len(suite['expectations'])} expectations); review the diff before committing it")


if __name__ == "__main__":
    main()

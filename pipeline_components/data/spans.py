"""Writing spans: one folder per span, one CSV plus a manifest, replaced atomically."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from pipeline_components.durable import swap_dir


@dataclass(frozen=True)
class SpanReport:
    span: str
    path: str
    rows: int
    source_rows: int
    dropped: dict[str, int]
    label_counts: dict[str, int]
    sample_fraction: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def write_span(
    span_dir: Path,
    file_name: str,
    frame: pd.DataFrame,
    *,
    source_rows: int,
    dropped: dict[str, int],
    label: str,
    sample_fraction: float,
) -> SpanReport:
    """Write one span's CSV and ``_manifest.json`` into a temporary folder, then swap it in.

    A reader (ExampleGen globbing ``span-*``) never sees a half-written span: the temporary folder's name does
    not match the span pattern, and the final rename is atomic on one filesystem.
    """
    span_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{span_dir.name}.", dir=span_dir.parent))
    frame.to_csv(staging / file_name, index=False)
    label_counts = {str(k): int(v) for k, v in sorted(frame[label].value_counts().items())}
    report = SpanReport(
        span=span_dir.name,
        path=str(span_dir / file_name),
        rows=len(frame),
        source_rows=source_rows,
        dropped=dropped,
        label_counts=label_counts,
        sample_fraction=sample_fraction,
    )
    (staging / "_manifest.json").write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    os.chmod(staging, 0o755)
    swap_dir(staging, span_dir)  # the old span or the new one, never neither; flushed to disk first
    return report
